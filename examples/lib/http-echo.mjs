// A tiny web "container" for the examples: answers every request with its name, its own
// address and the client's, one line, and closes the connection (so each request can land on
// another back end). Usage: node http-echo.mjs NAME PORT [TAG] (TAG only marks the process)
import { createServer } from 'node:http';

const [name = 'web', port = '80'] = process.argv.slice(2);
const strip = (a = '') => a.replace(/^::ffff:/, '');
const server = createServer((req, res) => {
  const body = `${name} ${strip(req.socket.localAddress)} answered ${strip(req.socket.remoteAddress)}\n`;
  res.writeHead(200, { 'content-type': 'text/plain', connection: 'close' }).end(body);
});
server.listen(Number(port), '0.0.0.0', () => process.stdout.write(`listening ${name} :${port}\n`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
