#!/usr/bin/env node
// bin/tsbridge.ts — entry only: VERSION from the fast path (no other import), everything else from plugins/cni/tsbridge.
import { answerVersionIfAsked } from '../plugins/cni/fast-entry.js';

await answerVersionIfAsked();
await (await import('../plugins/cni/tsbridge.js')).main();
