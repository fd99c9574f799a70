// CNI_ARGS and runtimeConfig capabilities as typed, validated values.
import test from 'ava';
import { parseAttachmentOptions, parseCniArgs, STANDARD_ARG_KEYS } from '../../plugins/cni/args.js';
import { parseArgPairs } from '../../plugins/cni/env.js';
import { CniError } from '../../plugins/cni/errors.js';
import type { NetConf } from '../../plugins/cni/types.js';

const args = (raw: string, known: string[] = []) => parseCniArgs(parseArgPairs(raw), [...STANDARD_ARG_KEYS, ...known]);
const conf = (extra: Partial<NetConf>): NetConf => ({ cniVersion: '1.0.0', name: 'net1', type: 'tsbridge', ...extra });

function cniErr(fn: () => unknown): CniError {
  try {
    fn();
  } catch (err) {
    if (err instanceof CniError) return err;
    throw err;
  }
  throw new Error('expected a CniError');
}

test('CNI_ARGS: podman style IgnoreUnknown + K8S_POD_NAME + MAC + IP', (t) => {
  const a = args('IgnoreUnknown=1;K8S_POD_NAME=web;K8S_POD_NAMESPACE=ns;MAC=02:AA:bb:cc:dd:ee;IP=10.0.0.5,fd00::5/64;FOO=bar');
  t.true(a.ignoreUnknown);
  t.deepEqual(a.k8s, { name: 'web', namespace: 'ns' });
  t.is(a.mac, '02:aa:bb:cc:dd:ee');
  t.deepEqual(a.ips, ['10.0.0.5', 'fd00::5/64']);
  t.deepEqual(a.extra, {});
});

test('CNI_ARGS: unknown keys are code 4 unless IgnoreUnknown; K8S_POD_* always tolerated; declared keys kept', (t) => {
  const err = cniErr(() => args('FOO=bar;IP=10.0.0.5'));
  t.is(err.code, 4);
  t.regex(err.msg, /CNI_ARGS.*FOO=bar.*IgnoreUnknown/);
  t.is(cniErr(() => args('IgnoreUnknown=0;FOO=bar')).code, 4);
  t.true(args('IgnoreUnknown=true;FOO=bar').ignoreUnknown);
  t.deepEqual(args('K8S_POD_FUTURE_FIELD=x;K8S_POD_UID=u').k8s, { uid: 'u' });
  t.deepEqual(args('BRIDGE=br9', ['BRIDGE']).extra, { BRIDGE: 'br9' });
  t.is(cniErr(() => args('IgnoreUnknown=yes')).code, 4);
});

test('CNI_ARGS: bad IP or MAC is code 4 naming the value', (t) => {
  t.regex(cniErr(() => args('IP=10.0.0.300')).msg, /CNI_ARGS="IP=10\.0\.0\.300"/);
  t.regex(cniErr(() => args('MAC=01:00:5e:00:00:01')).msg, /MAC=01:00:5e:00:00:01.*unicast/);
  t.is(cniErr(() => args('MAC=zz')).code, 4);
});

test('runtimeConfig.portMappings: validated, protocol defaults to tcp and is lower-cased', (t) => {
  const o = parseAttachmentOptions(
    conf({ runtimeConfig: { portMappings: [{ hostPort: 8080, containerPort: 80 }, { hostPort: 53, containerPort: 53, protocol: 'UDP', hostIP: '127.0.0.1' }, { hostPort: 9, containerPort: 9, protocol: 'sctp', hostIP: '' }] } }),
    args(''),
  );
  t.deepEqual(o.portMappings, [
    { hostPort: 8080, containerPort: 80, protocol: 'tcp' },
    { hostPort: 53, containerPort: 53, protocol: 'udp', hostIP: '127.0.0.1' },
    { hostPort: 9, containerPort: 9, protocol: 'sctp' },
  ]);
});

test('runtimeConfig.portMappings: bad values name the field (7), an unknown protocol is unsupported (2)', (t) => {
  const bad: Array<[unknown, number, RegExp]> = [
    [{ hostPort: 0, containerPort: 80 }, 7, /portMappings\[0\]\.hostPort 0/],
    [{ hostPort: 70000, containerPort: 80 }, 7, /hostPort 70000/],
    [{ hostPort: 80, containerPort: 1.5 }, 7, /containerPort 1\.5/],
    [{ hostPort: 80, containerPort: '80' }, 7, /containerPort "80"/],
    [{ hostPort: 80, containerPort: 80, hostIP: '1.2.3' }, 7, /hostIP "1\.2\.3"/],
    [{ hostPort: 80, containerPort: 80, protocol: 'icmp' }, 2, /protocol "icmp"/],
  ];
  for (const [pm, code, re] of bad) {
    const err = cniErr(() => parseAttachmentOptions(conf({ runtimeConfig: { portMappings: [pm as never] } }), args('')));
    t.is(err.code, code, JSON.stringify(pm));
    t.regex(err.msg, re);
  }
  t.is(cniErr(() => parseAttachmentOptions(conf({ runtimeConfig: { portMappings: {} as never } }), args(''))).code, 7);
});

test('ips: runtimeConfig.ips first, then args.cni.ips, which overrides CNI_ARGS IP', (t) => {
  t.deepEqual(parseAttachmentOptions(conf({ runtimeConfig: { ips: ['10.0.0.7/24'] } }), args('IP=10.0.0.8')).ips, ['10.0.0.7/24', '10.0.0.8']);
  t.deepEqual(parseAttachmentOptions(conf({ args: { cni: { ips: ['10.0.0.9'] } } }), args('IP=10.0.0.8')).ips, ['10.0.0.9']);
  t.deepEqual(parseAttachmentOptions(conf({ runtimeConfig: { ips: ['10.0.0.8'] } }), args('IP=10.0.0.8')).ips, ['10.0.0.8']);
  t.regex(cniErr(() => parseAttachmentOptions(conf({ runtimeConfig: { ips: ['nope'] } }), args(''))).msg, /runtimeConfig\.ips\[0\] "nope"/);
});

test('mac: runtimeConfig.mac, else args.cni.mac, else CNI_ARGS MAC', (t) => {
  const m = (c: Partial<NetConf>, a: string) => parseAttachmentOptions(conf(c), args(a)).mac;
  t.is(m({ runtimeConfig: { mac: '02:00:00:00:00:01' }, args: { cni: { mac: '02:00:00:00:00:02' } } }, 'MAC=02:00:00:00:00:03'), '02:00:00:00:00:01');
  t.is(m({ args: { cni: { mac: '02:00:00:00:00:02' } } }, 'MAC=02:00:00:00:00:03'), '02:00:00:00:00:02');
  t.is(m({}, 'MAC=02:00:00:00:00:03'), '02:00:00:00:00:03');
  t.is(m({}, ''), undefined);
  t.is(cniErr(() => m({ runtimeConfig: { mac: 'ff:ff:ff:ff:ff:ff' } }, '')).code, 7);
});

test('aliases: a list, or podman\'s map keyed by network name', (t) => {
  t.deepEqual(parseAttachmentOptions(conf({ runtimeConfig: { aliases: ['web', 'www.example', 'web'] } }), args('')).aliases, ['web', 'www.example']);
  t.deepEqual(parseAttachmentOptions(conf({ runtimeConfig: { aliases: { net1: ['db'], other: ['x'] } } }), args('')).aliases, ['db']);
  t.deepEqual(parseAttachmentOptions(conf({ runtimeConfig: { aliases: { other: ['x'] } } }), args('')).aliases, []);
  t.regex(cniErr(() => parseAttachmentOptions(conf({ runtimeConfig: { aliases: ['bad name'] } }), args(''))).msg, /aliases "bad name"/);
});

test('dns, ipRanges and bandwidth capabilities', (t) => {
  const o = parseAttachmentOptions(
    conf({
      runtimeConfig: {
        dns: { servers: ['10.0.0.1', 'fd00::1'], searches: ['svc.local'], options: ['ndots:5'] },
        ipRanges: [[{ subnet: '10.2.0.0/24', rangeStart: '10.2.0.10', rangeEnd: '10.2.0.20', gateway: '10.2.0.1' }], [{ subnet: 'fd02::/64' }]],
        bandwidth: { ingressRate: 1000000, ingressBurst: 8000, egressRate: 2000000, egressBurst: 16000 },
      },
    }),
    args(''),
  );
  t.deepEqual(o.dns, { servers: ['10.0.0.1', 'fd00::1'], searches: ['svc.local'], options: ['ndots:5'] });
  t.deepEqual(o.ipRanges[1], [{ subnet: 'fd02::/64' }]);
  t.is(o.ipRanges[0]![0]!.rangeEnd, '10.2.0.20');
  t.deepEqual(o.bandwidth, { ingressRate: 1000000, ingressBurst: 8000, egressRate: 2000000, egressBurst: 16000 });
  const bad: Array<[Record<string, unknown>, RegExp]> = [
    [{ dns: { servers: ['dns.google'] } }, /dns\.servers "dns\.google"/],
    [{ ipRanges: [[{ subnet: '10.2.0.0/24', gateway: 'fd00::1' }]] }, /ipRanges\[0\]\[0\]\.gateway "fd00::1"/],
    [{ ipRanges: [[{ subnet: '10.2.0.0' }]] }, /subnet "10\.2\.0\.0"/],
    [{ bandwidth: { egressRate: -1 } }, /bandwidth\.egressRate -1/],
  ];
  for (const [rc, re] of bad) {
    const err = cniErr(() => parseAttachmentOptions(conf({ runtimeConfig: rc }), args('')));
    t.is(err.code, 7);
    t.regex(err.msg, re);
  }
});
