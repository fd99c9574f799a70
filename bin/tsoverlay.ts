#!/usr/bin/env node
// The tsoverlay command line: the daemon and the commands that read or change state.
import { Command, Option } from 'commander';

const program = new Command('tsoverlay')
  .description('container networking and service discovery: Docker remote drivers and CNI plugins over one store')
  .version('0.1.0');

program
  .command('daemon')
  .description('run the per-host daemon (plugin sockets, local API, reconcilers)')
  .option('--config <file>', 'YAML or JSON config file (keys are the flags in camelCase)')
  .option('--store <url>', 'sqlite:///PATH or etcd://HOST:PORT[,…][/prefix] (default sqlite://<state-dir>/store.db)')
  .option('--state-dir <dir>', 'state directory (default /var/lib/tsoverlay)')
  .option('--host-id <id>', 'this host\'s id (default the host name)')
  .option('--advertise <ip>', 'underlay address for VXLAN peers (default the default-route interface\'s)')
  .option('--plugin-dir <dir>', 'Docker plugin socket directory (default /run/docker/plugins)')
  .option('--socket <path>', 'local API socket (default /run/tsoverlay/tsoverlay.sock)')
  .option('--metrics <addr:port>', 'serve Prometheus metrics on this address')
  .addOption(new Option('--log-level <level>', 'log level (default info)').choices(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']))
  .option('--dns-domain <domain>', 'DNS domain for container names (default tsoverlay.)')
  .option('--dns-port <n>', 'DNS port on each network gateway (default 53)')
  .option('--dns-upstream <list>', 'upstream resolvers IP[:PORT],… (default from /etc/resolv.conf)')
  .option('--docker-host <url>', 'Docker engine to ask for names (default unix:///var/run/docker.sock)')
  .action(async (opts) => {
    const { runDaemon } = await import('../daemon/commands/daemon.js');
    process.exitCode = await runDaemon(opts);
  });

const host = program.command('host').description('hosts registered in the store');
host
  .command('ls')
  .description('list hosts with their advertise address and liveness')
  .option('--store <url>', 'store URL (default sqlite:///var/lib/tsoverlay/store.db)')
  .option('--state-dir <dir>', 'state directory for the default store', '/var/lib/tsoverlay')
  .option('--json', 'print a JSON array')
  .action(async (opts) => {
    const { hostLs } = await import('../daemon/commands/ls.js');
    process.exitCode = await hostLs(opts);
  });

await program.parseAsync(process.argv);
