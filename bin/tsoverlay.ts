#!/usr/bin/env node
// bin/tsoverlay.ts — one executable, two roles: run by a container runtime with CNI_COMMAND
// set, it is the `tsoverlay` CNI plugin (VERSION from the fast path, nothing else loaded);
// otherwise it is the tsoverlay command line.
import { answerVersionIfAsked } from '../plugins/cni/fast-entry.js';

if (process.env.CNI_COMMAND) {
  await answerVersionIfAsked();
  await (await import('../plugins/cni/tsoverlay.js')).main();
} else {
  await import('../daemon/cli.js');
}
