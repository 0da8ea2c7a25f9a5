import { isIP } from 'node:net';
import type { Request, RequestHandler } from 'express';

/**
 * The one key every per-client limit counts under (the request limit, the distinct-recipient cap,
 * adaptive bot protection): the network a client sends from, not its address.
 *
 * - IPv4: the address. A subscriber usually has one, and NAT already puts households behind it.
 * - IPv6: the first `ipv6Subnet` bits (IPV6_SUBNET, /56 by default). An ISP hands each subscriber
 *   a /56 to /48 and a host picks any of the 2^64 addresses of its /64 at will, so counting
 *   addresses would give one client as many allowances as it cares to use (60 recipients a minute
 *   from one /64 where 20 an hour are allowed, before this).
 * - An IPv4 address written as IPv6 (::ffff:a.b.c.d, what a dual-stack socket reports for an IPv4
 *   client) is its IPv4 address; masked as IPv6 every IPv4 client would share one key.
 * - Anything that is not an IP address (text a misconfigured proxy passed on from X-Forwarded-For,
 *   or no address at all) is INVALID_CLIENT: one key for all of them. Such text must never become
 *   part of a store key, since each distinct value would be a new key (about 2.5 keys per request,
 *   as long as the header allows), which lets anybody grow the store without bound.
 */
export function clientKey(given: string | undefined, ipv6Subnet: number): string {
  // Longer than any address with a zone id worth keeping; checked first so isIP never parses junk.
  if (given === undefined || given.length > MAX_ADDRESS_LENGTH) return INVALID_CLIENT;
  const address = withoutPort(given);
  const version = isIP(address);
  if (version === 4) return address;
  if (version !== 6) return INVALID_CLIENT;
  const groups = ipv6Groups(address);
  if (isIpv4Mapped(groups)) {
    const high = groups[6] as number;
    const low = groups[7] as number;
    return `${high >> 8}.${high & 0xff}.${low >> 8}.${low & 0xff}`;
  }
  // Whole groups first, then the group the prefix ends in, masked; the rest are zero.
  const kept = Math.ceil(ipv6Subnet / 16);
  const network = groups.slice(0, kept);
  const spare = kept * 16 - ipv6Subnet;
  network[kept - 1] = ((network[kept - 1] as number) >> spare) << spare;
  return `${network.map((group) => group.toString(16)).join(':')}::/${ipv6Subnet}`;
}

/** The key of every client whose address is not an IP address; no valid key looks like it. */
export const INVALID_CLIENT = 'invalid';

const MAX_ADDRESS_LENGTH = 100;

/**
 * Some load balancers (Azure's among them) write the client's port into X-Forwarded-For:
 * 198.51.100.7:51234 or [2001:db8::1]:51234. The port is not part of who the client is, and
 * without this every client of such a proxy would share the one invalid key.
 */
function withoutPort(address: string): string {
  const v4 = /^(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}$/.exec(address);
  if (v4) return v4[1] as string;
  const v6 = /^\[([^\]]+)\](?::\d{1,5})?$/.exec(address);
  return v6 ? (v6[1] as string) : address;
}

/** An address isIP accepted as IPv6, as its eight 16-bit groups. */
function ipv6Groups(address: string): number[] {
  // A zone id (fe80::1%eth0) names the sender's interface, not part of the address.
  const bare = address.split('%')[0] as string;
  const [head = '', tail] = bare.split('::');
  const parse = (part: string): number[] =>
    part === ''
      ? []
      : part.split(':').flatMap((piece) => {
          // A trailing dotted IPv4 part (::ffff:1.2.3.4) fills the last two groups.
          if (!piece.includes('.')) return [Number.parseInt(piece, 16)];
          const [a, b, c, d] = piece.split('.').map(Number) as [number, number, number, number];
          return [(a << 8) | b, (c << 8) | d];
        });
  const front = parse(head);
  const back = tail === undefined ? [] : parse(tail);
  const zeros = new Array<number>(8 - front.length - back.length).fill(0);
  return [...front, ...zeros, ...back];
}

/** ::ffff:0:0/96, the range that carries an IPv4 address (RFC 4291, 2.5.5.2). */
function isIpv4Mapped(groups: readonly number[]): boolean {
  return groups.slice(0, 5).every((group) => group === 0) && groups[5] === 0xffff;
}

const CLIENT = Symbol('verifyd.client');
type Identified = Request & { [CLIENT]?: string };

/**
 * Works out the client key once per request, before anything counts it; every limit then reads it
 * through clientOf. (Express derives req.ip anew on each read, parsing X-Forwarded-For again.)
 * `onInvalid` hears of the first client whose address is not an IP address: a proxy that passes
 * on such text is misconfigured, and all its clients now share one set of limits.
 */
export function identifyClient(ipv6Subnet: number, onInvalid?: () => void): RequestHandler {
  let reported = false;
  return (req, _res, next) => {
    const key = clientKey(req.ip ?? req.socket.remoteAddress, ipv6Subnet);
    if (key === INVALID_CLIENT && !reported) {
      reported = true;
      onInvalid?.();
    }
    (req as Identified)[CLIENT] = key;
    next();
  };
}

/** The key identifyClient gave this request. */
export function clientOf(req: Request): string {
  const key = (req as Identified)[CLIENT];
  // A route mounted without identifyClient in front is a wiring mistake, not a client's; failing
  // loudly beats counting every client under one key.
  if (key === undefined) throw new Error('identifyClient must run before the per-client limits');
  return key;
}
