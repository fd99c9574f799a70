#!/usr/bin/env node
// bin/tsipam.ts — entry only: VERSION from the fast path (no other import), everything else from plugins/cni/tsipam.
import { answerVersionIfAsked } from '../plugins/cni/fast-entry.js';

await answerVersionIfAsked();
await (await import('../plugins/cni/tsipam.js')).main();
