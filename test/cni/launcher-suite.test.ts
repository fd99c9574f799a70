// The CNI kernel suites again, with every plugin executable a copy of the compiled launcher
// (bin/launcher/): standalone (their configs name no daemon: the launcher execs Node), via
// the daemon (daemon/cni-handoff: reply "exec"), and podman on a conflist of launchers.
// Any test/cni file runs this way with TSOT_CNI_LAUNCHER=1 (the static imports below run
// in order: launcher-mode.js sets it before the suites declare their tests).
import './launcher-mode.js';
import './tsbridge.test.js';
import './plugins.test.js';
import './podman.test.js';
import '../daemon/cni-handoff.test.js';
