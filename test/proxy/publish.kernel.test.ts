// Port publishing against the iptables backend: the shared suite in publish-suite.ts.
import { publishSuite } from './publish-suite.js';

publishSuite('iptables');
