#!/usr/bin/env node
// bin/tshost.ts — entry only: VERSION from the fast path (no other import), everything else from plugins/cni/tshost.
import { answerVersionIfAsked } from '../plugins/cni/fast-entry.js';

await answerVersionIfAsked();
await (await import('../plugins/cni/tshost.js')).main();
