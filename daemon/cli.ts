// The tsoverlay command line: the daemon and the commands that read or change state.
import { Command, Option } from 'commander';
import { sanitizeCliError } from './cli-text.js';

const program = new Command('tsoverlay')
  .description('container networking and service discovery: Docker remote drivers and CNI plugins over one store')
  .version('0.1.0')
  // Set before the subcommands are added: they copy it. Commander quotes unknown words raw.
  .configureOutput({ outputError: (str, write) => write(sanitizeCliError(str, process.argv.slice(2))) });

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
  .option('--reconcile-interval <seconds>', 'repair kernel and firewall state from the store this often (default 30; 0: start-up only)')
  .addOption(new Option('--firewall-backend <name>', 'iptables (iptables-restore over TSO-* chains) or nft (one nft table with maps); default iptables').choices(['iptables', 'nft']))
  .action(async (opts) => {
    const { runDaemon } = await import('./commands/daemon.js');
    process.exitCode = await runDaemon(opts);
  });

/** Commander's accumulator for repeatable options. */
const collect = (v: string, prev: string[] = []) => [...prev, v];

/** The options every command that reads or writes state takes. */
function stateOptions(cmd: Command): Command {
  return cmd
    .option('--store <url>', 'store URL (default sqlite://<state-dir>/store.db)')
    .option('--state-dir <dir>', 'state directory for the default store', '/var/lib/tsoverlay')
    .option('--json', 'print JSON');
}

/**
 * Run a command module's function and set the exit code from it. Our errors (they carry
 * a `kind`) print their message alone; anything else is a bug and keeps its stack.
 */
function act<O>(load: () => Promise<(opts: O) => Promise<number>>) {
  return async (opts: O) => {
    try {
      const fn = await load();
      process.exitCode = await fn(opts);
    } catch (err) {
      const known = err instanceof Error && typeof (err as { kind?: unknown }).kind === 'string';
      process.stderr.write(`tsoverlay: ${known ? err.message : (err as Error)?.stack ?? String(err)}\n`);
      process.exitCode = 1;
    }
  };
}

/** `--no-trunc` for the commands that print tables. */
function tableOptions(cmd: Command): Command {
  return stateOptions(cmd).option('--no-trunc', 'show Docker\'s 64-character ids in full in tables (--json always does)');
}

tableOptions(program.command('host').description('hosts registered in the store').command('ls'))
  .description('list hosts with their advertise address and liveness')
  .action(act(async () => (await import('./commands/ls.js')).hostLs));

const inspect = () => import('./commands/inspect.js');
const network = program.command('network').description('networks of every driver and host');
tableOptions(network.command('ls'))
  .description('list networks')
  .action(act(async () => (await import('./commands/ls.js')).networkLs));
stateOptions(network.command('inspect'))
  .description('print networks as JSON: the stored record and its endpoints')
  .argument('<network...>', 'network id, name or id prefix')
  .action(actArgs(async () => (await inspect()).networkInspect));

// Create and remove change the kernel: they go through the running daemon's local API.
const apiOptions = (cmd: Command) =>
  cmd.option('--socket <path>', 'the daemon\'s local API socket', '/run/tsoverlay/tsoverlay.sock').option('--json', 'print the network record(s) as JSON');
apiOptions(network.command('create'))
  .description('create a network for CNI conflists of the same name (through the running daemon); prints its id')
  .argument('<name>', 'network name: what a CNI conflist\'s "name" must be to use it')
  .addOption(new Option('-d, --driver <driver>', 'network driver').choices(['tsbridge', 'tsoverlay', 'tshost']).default('tsbridge'))
  .option('--subnet <cidr>', 'subnet (default: one chosen from the default pools)')
  .option('--gateway <ip>', 'gateway address in the subnet (default its first address)')
  .option('--ip-range <cidr>', 'allocate container addresses from this part of the subnet')
  .option('--internal', 'no route out, no masquerade, not reachable from outside')
  .option('-o, --opt <key=value>', 'driver option (repeatable): bridge, mtu, icc, masquerade, hairpin, hostBindingIpv4, vni, or Docker\'s com.docker.network.* spellings', collect)
  .action(actArgs(async () => (await import('./commands/networks.js')).networkCreate));
apiOptions(network.command('rm'))
  .alias('remove')
  .description('remove networks made by network create or a CNI conflist (through the running daemon); refused while they have endpoints')
  .argument('<network...>', 'network id, name or id prefix')
  .action(actArgs(async () => (await import('./commands/networks.js')).networkRm));

const endpoint = program.command('endpoint').description('endpoints (container attachments)');
tableOptions(endpoint.command('ls'))
  .description('list endpoints with host, addresses and published ports')
  .option('--network <id>', 'only this network')
  .action(act(async () => (await import('./commands/ls.js')).endpointLs));
stateOptions(endpoint.command('inspect'))
  .description('print endpoints as JSON: the stored record and its network\'s name')
  .argument('<endpoint...>', 'endpoint id, name, alias, container id or a prefix of 12 or more')
  .action(actArgs(async () => (await inspect()).endpointInspect));

const ipamCmd = program.command('ipam').description('address pools and allocations');
tableOptions(ipamCmd.command('ls'))
  .description('list allocations as {address, pool, network, owner, host}')
  .option('--pool <id>', 'only this pool')
  .action(act(async () => (await import('./commands/ls.js')).ipamLs));
stateOptions(ipamCmd.command('inspect'))
  .description('print pools as JSON: range, gateway, reserved addresses, users and allocations')
  .argument('<pool...>', 'pool id (e.g. local/10.20.0.0/24) or its CIDR')
  .action(actArgs(async () => (await inspect()).ipamInspect));

tableOptions(ipamCmd.command('gc'))
  .description('release allocations whose owner is gone (endpoint or CNI attachment record missing); prints them as ipam ls rows')
  .option('--dry-run', 'only print what would be released')
  .option('--grace <seconds>', 'leave allocations younger than this alone (an ADD in flight has no record yet)', '60')
  .option('--pool <id>', 'only this pool')
  .action(act(async () => (await import('./commands/ipam-gc.js')).ipamGc));

const install = program.command('install').description('install the CNI executables or the Docker plugin files');
install
  .command('cni')
  .description('write tsbridge tsoverlay tshost tsipam tsportmap into a CNI bin directory, and example conflists')
  .requiredOption('--dir <dir>', 'CNI plugin directory, e.g. /opt/cni/bin')
  .option('--conf-dir <dir>', 'where example conflists go (default <dir>/../net.d-examples)')
  .option('--store <url>', 'store URL written into the examples')
  .option('--json', 'print JSON')
  .action(act(async () => (await import('./commands/misc.js')).installCniCommand));
install
  .command('docker')
  .description('write Docker plugin spec files, an example systemd unit and a README into a directory')
  .requiredOption('--dir <dir>', 'directory to write into (nothing outside it is touched)')
  .option('--plugin-dir <dir>', 'the daemon\'s plugin socket directory (default /run/docker/plugins)')
  .option('--socket <path>', 'the daemon\'s local API socket')
  .option('--exec-path <path>', 'the tsoverlay executable the unit starts')
  .option('--state-dir <dir>', '--state-dir for the unit')
  .option('--store <url>', '--store for the unit')
  .action(act(async () => (await import('./commands/misc.js')).installDockerCommand));

stateOptions(program.command('doctor'))
  .description('check the kernel, firewall, store and peers; each problem with the command that fixes it')
  .option('--host-id <id>', 'this host\'s id (default the host name)')
  .option('--netns <path>', 'inspect this network namespace instead of the current one')
  .action(act(async () => {
    const { runDoctor } = await import('./commands/doctor.js');
    return (opts: Parameters<typeof runDoctor>[0] & { netns?: string }) => runDoctor({ ...opts, netnsPath: opts.netns });
  }));

stateOptions(program.command('dns').description('the DNS server').command('serve'))
  .description('serve every network\'s names, services and SkyDNS records from the store')
  .requiredOption('--listen <addr:port,…>', 'addresses to listen on (UDP and TCP)')
  .option('--domain <domain>', 'DNS domain (default tsoverlay.)')
  .option('--upstream <ip[:port],…>', 'upstream resolvers (default /etc/resolv.conf)')
  .option('--recursion-from <cidr,…>', 'clients besides loopback and our networks that may recurse')
  .action(act(async () => (await import('./commands/misc.js')).dnsServeCommand));

// Links and services: store writes every daemon applies (daemon/store-rules.ts).
/** act() for commands with positional arguments: fn(...args, opts). */
function actArgs(load: () => Promise<(...a: any[]) => Promise<number>>) {
  return async (...a: unknown[]) => {
    const opts = a[a.length - 2];
    const positional = a.slice(0, -2);
    await act(async () => async (o: unknown) => (await load())(...positional, o))(opts);
  };
}
const linksServices = () => import('./commands/links-services.js');

const link = program.command('link').description('legacy links: FROM may reach TO\'s ports on a network with icc=false');
stateOptions(link.command('add'))
  .description('link FROM to TO (optionally known as ALIAS); prints the environment Docker gives FROM')
  .argument('<from>', 'endpoint name, alias or id')
  .argument('<to>', 'TO[:ALIAS]')
  .requiredOption('--network <net>', 'network id, name or id prefix')
  .option('--port <port[/proto]>', 'port of TO to open (repeatable; default TO\'s exposed ports)', collect)
  .action(actArgs(async () => (await linksServices()).linkAdd));
stateOptions(link.command('rm'))
  .description('remove the link from FROM to TO')
  .argument('<from>')
  .argument('<to>')
  .requiredOption('--network <net>', 'network id, name or id prefix')
  .action(actArgs(async () => (await linksServices()).linkRm));
tableOptions(link.command('ls'))
  .description('list links with their addresses and state (active: both ends exist)')
  .option('--network <net>', 'only this network')
  .action(act(async () => (await linksServices()).linkLs));

const service = program.command('service').description('service virtual IPs load-balanced over endpoints');
stateOptions(service.command('create'))
  .description('create a service: VIP and ports, backends chosen by endpoint name or labels')
  .argument('<name>', 'service name (a DNS label)')
  .requiredOption('--vip <ip>', 'the virtual IP')
  .requiredOption('--port <port[:target][/proto]>', 'service port (repeatable)', collect)
  .option('--endpoint <name>', 'backend endpoint name or alias (repeatable)', collect)
  .option('--label <key=value>', 'select backends by label (repeatable; all must match)', collect)
  .option('--affinity <seconds>', 'keep a client on its backend this long')
  .action(actArgs(async () => (await linksServices()).serviceCreate));
stateOptions(service.command('rm'))
  .description('remove a service')
  .argument('<name>')
  .action(actArgs(async () => (await linksServices()).serviceRm));
tableOptions(service.command('ls'))
  .description('list services with the backend addresses they select now')
  .action(act(async () => (await linksServices()).serviceLs));
stateOptions(service.command('add-backend'))
  .description('add endpoints (by name or alias) to a service\'s backends')
  .argument('<name>')
  .argument('<endpoints...>')
  .action(actArgs(async () => (await linksServices()).serviceAddBackend));
stateOptions(service.command('rm-backend'))
  .description('remove endpoints from a service\'s backends')
  .argument('<name>')
  .argument('<endpoints...>')
  .action(actArgs(async () => (await linksServices()).serviceRmBackend));

await program.parseAsync(process.argv);
