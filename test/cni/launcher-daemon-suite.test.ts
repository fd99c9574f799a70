// The CNI kernel suites with launcher executables and a tsoverlay daemon in each test's host
// namespace: every call goes launcher → daemon (reply "exec") → the same handlers, and the
// suites' assertions (results in every spec version, error codes, nothing left behind,
// published ports, chaining with the reference plugins) hold unchanged. world.ts fails a
// test whose daemon served nothing.
import './launcher-daemon-mode.js';
import './tsbridge.test.js';
import './plugins.test.js';
import './chaining.test.js';
