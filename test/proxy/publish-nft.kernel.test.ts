// Port publishing against the nft backend: the shared suite in publish-suite.ts.
import { publishSuite } from './publish-suite.js';

publishSuite('nft');
