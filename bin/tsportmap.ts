#!/usr/bin/env node
// bin/tsportmap.ts — entry only: VERSION from the fast path (no other import), everything else from plugins/cni/tsportmap.
import { answerVersionIfAsked } from '../plugins/cni/fast-entry.js';

await answerVersionIfAsked();
await (await import('../plugins/cni/tsportmap.js')).main();
