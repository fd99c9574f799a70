// CNI environment validation: required variables per verb and libcni's value rules.
import test from 'ava';
import { interfaceNameProblem, parseArgPairs, parseEnv } from '../../plugins/cni/env.js';
import { CniError } from '../../plugins/cni/errors.js';

const good = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'abc123', CNI_NETNS: '/run/netns/x', CNI_IFNAME: 'eth0', CNI_PATH: '/opt/cni/bin::/usr/lib/cni' };

function envError(env: NodeJS.ProcessEnv): CniError {
  try {
    parseEnv(env);
  } catch (err) {
    if (err instanceof CniError) return err;
    throw err;
  }
  throw new Error(`parseEnv accepted ${JSON.stringify(env)}`);
}

test('a good ADD environment parses', (t) => {
  const e = parseEnv({ ...good, CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME=p' });
  t.is(e.command, 'ADD');
  t.is(e.containerId, 'abc123');
  t.is(e.netns, '/run/netns/x');
  t.is(e.ifname, 'eth0');
  t.deepEqual(e.path, ['/opt/cni/bin', '/usr/lib/cni']);
  t.deepEqual(e.argPairs, [['IgnoreUnknown', '1'], ['K8S_POD_NAME', 'p']]);
  t.false(e.netnsOverride);
});

test('each bad variable is code 4 naming the variable and its value', (t) => {
  const cases: Array<[NodeJS.ProcessEnv, RegExp]> = [
    [{ ...good, CNI_COMMAND: 'FROB' }, /CNI_COMMAND="FROB"/],
    [{ ...good, CNI_COMMAND: 'add' }, /CNI_COMMAND="add"/],
    [{ ...good, CNI_CONTAINERID: '-abc' }, /CNI_CONTAINERID="-abc"/],
    [{ ...good, CNI_CONTAINERID: 'a/b' }, /CNI_CONTAINERID="a\/b"/],
    [{ ...good, CNI_CONTAINERID: 'a b' }, /CNI_CONTAINERID="a b"/],
    [{ ...good, CNI_IFNAME: 'eth0123456789012' }, /CNI_IFNAME="eth0123456789012".*15/],
    [{ ...good, CNI_IFNAME: 'eth/0' }, /CNI_IFNAME="eth\/0"/],
    [{ ...good, CNI_IFNAME: 'eth:0' }, /CNI_IFNAME="eth:0"/],
    [{ ...good, CNI_IFNAME: 'eth 0' }, /CNI_IFNAME="eth 0"/],
    [{ ...good, CNI_IFNAME: '..' }, /CNI_IFNAME="\.\."/],
    [{ ...good, CNI_IFNAME: 'ééééééééé' }, /CNI_IFNAME=.*15 bytes/],
    [{ ...good, CNI_NETNS: 'run/netns/x' }, /CNI_NETNS="run\/netns\/x"/],
    [{ ...good, CNI_ARGS: 'IP' }, /CNI_ARGS="IP".*"IP"/],
    [{ ...good, CNI_ARGS: 'A=1=2' }, /CNI_ARGS="A=1=2"/],
  ];
  for (const [env, re] of cases) {
    const err = envError(env);
    t.is(err.code, 4, JSON.stringify(env));
    t.regex(err.msg, re);
  }
});

test('missing variables are reported together, per verb', (t) => {
  t.regex(envError({ CNI_COMMAND: 'ADD' }).msg, /CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME/);
  t.regex(envError({ CNI_COMMAND: 'CHECK', CNI_CONTAINERID: 'a', CNI_IFNAME: 'eth0' }).msg, /missing for CHECK: CNI_NETNS$/);
  t.regex(envError({ CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'a' }).msg, /missing for DEL: CNI_IFNAME$/);
  t.regex(envError({}).msg, /CNI_COMMAND is missing/);
  t.is(envError({ CNI_COMMAND: 'DEL' }).code, 4);
});

test('DEL needs no netns and ignores an unusable one; VERSION/STATUS/GC need only the command', (t) => {
  t.is(parseEnv({ CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'a', CNI_IFNAME: 'eth0' }).netns, '');
  t.is(parseEnv({ CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'a', CNI_IFNAME: 'eth0', CNI_NETNS: 'relative' }).netns, '');
  for (const cmd of ['VERSION', 'STATUS', 'GC']) {
    const e = parseEnv({ CNI_COMMAND: cmd, CNI_CONTAINERID: '!!bad', CNI_IFNAME: 'way-too-long-interface' });
    t.is(e.command, cmd);
    t.is(e.containerId, '');
  }
  t.true(parseEnv({ ...good, CNI_NETNS_OVERRIDE: 'TRUE' }).netnsOverride);
});

test('interface names: 1–15 bytes, no / : whitespace, not . or ..', (t) => {
  for (const ok of ['eth0', 'a', 'x'.repeat(15), 'veth-1.2_3']) t.is(interfaceNameProblem(ok), undefined, ok);
  for (const bad of ['', 'x'.repeat(16), '.', '..', 'a/b', 'a:b', 'a\tb', 'a\nb', 'a\u00a0b', 'a\u0001b']) t.truthy(interfaceNameProblem(bad), JSON.stringify(bad));
});

test('CNI_ARGS pairs: order kept, trailing ";" tolerated', (t) => {
  t.deepEqual(parseArgPairs(''), []);
  t.deepEqual(parseArgPairs('A=1;B=;C=x/y;'), [['A', '1'], ['B', ''], ['C', 'x/y']]);
  t.throws(() => parseArgPairs('=1'), { instanceOf: CniError });
});
