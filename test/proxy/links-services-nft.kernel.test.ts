// Links and service VIPs against the nft backend: the shared suite in links-services-suite.ts.
import { linksServicesSuite } from './links-services-suite.js';

linksServicesSuite('nft');
