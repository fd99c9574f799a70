// DNS wire constants (RFC 1035, 3596, 2782, 6891) used by the codec and the handlers.
// Only the values tsoverlay reads or writes are named here.

/** Resource record types. */
export const T = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  MX: 15,
  TXT: 16,
  AAAA: 28,
  SRV: 33,
  OPT: 41,
  TKEY: 249,
  TSIG: 250,
  IXFR: 251,
  AXFR: 252,
  MAILB: 253,
  MAILA: 254,
  ANY: 255,
} as const;

/** Classes. */
export const C = { IN: 1, CH: 3, HS: 4, NONE: 254, ANY: 255 } as const;

/** Response codes (values above 15 travel partly in the OPT record). */
export const RCODE = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
  BADVERS: 16,
} as const;

export type Rcode = (typeof RCODE)[keyof typeof RCODE];

/** Header flag bits (second 16-bit word). */
export const F = {
  QR: 0x8000,
  AA: 0x0400,
  TC: 0x0200,
  RD: 0x0100,
  RA: 0x0080,
  AD: 0x0020,
  CD: 0x0010,
} as const;

export const HEADER_SIZE = 12;
/** Largest UDP payload without EDNS (RFC 1035 4.2.1). */
export const CLASSIC_UDP_SIZE = 512;
/** The UDP payload size we advertise and cap EDNS clients to (DNS flag day 2020). */
export const OUR_UDP_SIZE = 1232;
/** Largest message over TCP (2-byte length prefix). */
export const MAX_MESSAGE = 65535;
/** Longest name on the wire, length octets included (RFC 1035 3.1). */
export const MAX_NAME_WIRE = 255;
export const MAX_LABEL = 63;

/** Question types that are never answered nor forwarded (meta types and zone transfers). */
export function isUnsupportedMetaType(qtype: number): boolean {
  return qtype >= T.TKEY && qtype <= T.MAILA;
}
