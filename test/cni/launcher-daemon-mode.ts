// Imported first by launcher-daemon-suite.test.ts: launcher executables (when built) and a
// daemon in every test world (TSOT_CNI_DAEMON=1, world.ts), for the suites imported next.
import './launcher-mode.js';

process.env.TSOT_CNI_DAEMON = '1';
