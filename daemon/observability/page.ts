// The topology page: one self-contained HTML document (inline CSS and script, no external assets)
// rendering hosts → networks → endpoints → published ports from /api/topology, re-read whenever
// /api/events reports a change. Data is placed with textContent only (never parsed as HTML).

const STYLE = `
:root { --bg:#f6f7f9; --card:#fff; --line:#d9dde3; --ink:#1d2330; --dim:#5d6778; --ok:#1f8a4c; --bad:#b3261e; --accent:#2456a6; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.4 system-ui, sans-serif; background:var(--bg); color:var(--ink); }
header { display:flex; align-items:center; gap:16px; padding:12px 20px; background:#1d2330; color:#fff; }
header h1 { font-size:18px; margin:0; font-weight:600; }
#summary { color:#c9d1de; }
#status { margin-left:auto; padding:2px 10px; border-radius:10px; background:#555; font-size:12px; }
#status.live { background:var(--ok); }
#status.down { background:var(--bad); }
main { padding:16px 20px; display:grid; grid-template-columns:repeat(auto-fill, minmax(420px, 1fr)); gap:16px; }
.host { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:12px 14px; }
.host h2 { font-size:16px; margin:0 0 2px; display:flex; gap:8px; align-items:center; }
.badge { font-size:11px; padding:1px 8px; border-radius:9px; color:#fff; background:var(--ok); font-weight:500; }
.badge.dead { background:var(--bad); }
.meta { color:var(--dim); font-size:12px; }
.net { border-left:3px solid var(--accent); margin:10px 0 0; padding:4px 0 4px 10px; }
.net h3 { font-size:14px; margin:0; }
.ep { margin:6px 0 0; padding:6px 8px; background:var(--bg); border-radius:6px; }
.ep .name { font-weight:600; }
.addr { font-family:ui-monospace, monospace; font-size:12px; }
.port { display:inline-block; margin:3px 4px 0 0; padding:1px 6px; border:1px solid var(--accent); border-radius:4px; font-family:ui-monospace, monospace; font-size:12px; color:var(--accent); }
.empty { color:var(--dim); font-style:italic; margin-top:8px; }
`;

// Plain browser JavaScript (ES2017), kept in a string so the daemon serves it inline.
const SCRIPT = `
'use strict';
const $ = (tag, cls, text) => { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; };
const short = (id) => (id && id.length > 12 ? id.slice(0, 12) : id || '');
let timer = null;

function portText(p) { return p.hostIp + ':' + p.hostPort + ' \\u2192 ' + p.containerPort + '/' + p.proto; }

function endpointEl(ep) {
  const el = $('div', 'ep');
  el.dataset.endpointId = ep.id;
  const names = ep.names.concat(ep.aliases);
  el.append($('span', 'name', names.length ? names.join(', ') : short(ep.id)), ' ');
  el.append($('span', 'meta', (ep.containerId ? 'container ' + short(ep.containerId) : 'endpoint ' + short(ep.id)) + (ep.joined ? '' : ' (not joined)')));
  el.append($('div', 'addr', ep.addresses.join('  ') + (ep.mac ? '  ' + ep.mac : '')));
  if (ep.ports.length) {
    const ports = $('div');
    for (const p of ep.ports) { const s = $('span', 'port', portText(p)); s.dataset.port = p.hostPort + '/' + p.proto; ports.append(s); }
    el.append(ports);
  }
  return el;
}

function networkEl(net, eps) {
  const el = $('div', 'net');
  el.dataset.networkId = net.id;
  el.append($('h3', '', (net.name || short(net.id)) + ' '));
  const bits = [net.driver, net.scope].concat(net.subnets);
  if (net.gateways.length) bits.push('gw ' + net.gateways.join(', '));
  if (net.vni !== null) bits.push('vni ' + net.vni);
  if (net.mtu !== null) bits.push('mtu ' + net.mtu);
  if (net.internal) bits.push('internal');
  el.append($('div', 'meta', bits.join(' \\u00b7 ')));
  if (!eps.length) el.append($('div', 'empty', 'no endpoints on this host'));
  for (const ep of eps) el.append(endpointEl(ep));
  return el;
}

function hostEl(host, nets, eps) {
  const el = $('section', 'host');
  el.dataset.hostId = host.id;
  const h = $('h2', '', host.id);
  h.append($('span', host.alive ? 'badge' : 'badge dead', host.registered === false ? 'not registered' : host.alive ? 'alive' : 'dead'));
  el.append(h);
  el.append($('div', 'meta', 'advertise ' + (host.advertise || 'none') + (host.version ? ' \\u00b7 v' + host.version : '')));
  const shown = nets.filter((n) => n.hostId === host.id || eps.some((e) => e.networkId === n.id));
  if (!shown.length) el.append($('div', 'empty', 'no networks on this host'));
  for (const n of shown) el.append(networkEl(n, eps.filter((e) => e.networkId === n.id)));
  return el;
}

function render(t) {
  const hosts = t.hosts.slice();
  const known = new Set(hosts.map((h) => h.id));
  const extra = new Set(t.endpoints.map((e) => e.hostId).concat(t.networks.map((n) => n.hostId)).filter((id) => id && !known.has(id)));
  for (const id of extra) hosts.push({ id, advertise: null, alive: false, version: null, registered: false });
  const main = document.getElementById('hosts');
  main.replaceChildren(...hosts.map((h) => hostEl(h, t.networks, t.endpoints.filter((e) => e.hostId === h.id))));
  const orphans = t.networks.filter((n) => !n.hostId && !t.endpoints.some((e) => e.networkId === n.id));
  if (orphans.length) {
    const el = $('section', 'host');
    el.append($('h2', '', 'networks without endpoints'));
    for (const n of orphans) el.append(networkEl(n, []));
    main.append(el);
  }
  if (!hosts.length && !orphans.length) main.append($('div', 'empty', 'nothing registered in the store yet'));
  const alive = t.hosts.filter((h) => h.alive).length;
  document.getElementById('summary').textContent = alive + '/' + t.hosts.length + ' hosts alive \\u00b7 ' + t.networks.length + ' networks \\u00b7 ' + t.endpoints.length + ' endpoints \\u00b7 revision ' + t.revision;
  document.body.dataset.revision = String(t.revision);
}

async function refresh() {
  timer = null;
  try {
    const r = await fetch('api/topology', { cache: 'no-store' });
    if (!r.ok) throw new Error('HTTP ' + r.status);
    render(await r.json());
  } catch (err) { setStatus('down', 'error: ' + err.message); }
}

function later() { if (timer === null) timer = setTimeout(refresh, 80); }
function setStatus(cls, text) { const s = document.getElementById('status'); s.className = cls; s.textContent = text; }

const events = new EventSource('api/events');
events.addEventListener('hello', () => { setStatus('live', 'live'); later(); });
events.addEventListener('change', later);
events.onerror = () => setStatus('down', 'reconnecting\\u2026');
`;

/** The page's HTML (static: all data arrives through /api/topology). */
export function topologyPage(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tsoverlay topology</title>
<style>${STYLE}</style>
</head>
<body>
<header><h1>tsoverlay topology</h1><span id="summary">loading\u2026</span><span id="status">connecting\u2026</span></header>
<main id="hosts"></main>
<script>${SCRIPT}</script>
</body>
</html>
`;
}
