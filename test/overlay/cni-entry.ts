// The tsoverlay CNI executable as a runtime runs it (what bin/tsoverlay does when CNI_COMMAND is
// set): VERSION from the fast path, everything else handed to the daemon on `daemonSocket`.
import { answerVersionIfAsked } from '../../plugins/cni/fast-entry.js';

await answerVersionIfAsked();
await (await import('../../plugins/cni/tsoverlay.js')).main();
