// Links and service VIPs against the iptables backend: the shared suite in links-services-suite.ts.
import { linksServicesSuite } from './links-services-suite.js';

linksServicesSuite('iptables');
