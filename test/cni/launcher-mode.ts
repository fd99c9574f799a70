// Imported first by launcher-suite.test.ts: selects launcher executables (TSOT_CNI_LAUNCHER=1)
// for the suites it imports next, when the launcher is built (else they run as Node entries).
import { launcherBuilt } from './harness.js';

if (launcherBuilt()) process.env.TSOT_CNI_LAUNCHER = '1';
else process.stderr.write('launcher-suite: dist/bin/cni-launcher not built (npm run build): the suites run with the Node entries\n');
