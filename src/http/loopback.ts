import { BlockList, isIP } from 'node:net';
import type { Request } from 'express';

/** 127.0.0.0/8 and ::1; BlockList also matches 127.x written as ::ffff:127.0.0.1. */
const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

export function isLoopbackAddress(address: string | undefined): boolean {
  const version = address === undefined ? 0 : isIP(address);
  return version !== 0 && LOOPBACK.check(address as string, version === 4 ? 'ipv4' : 'ipv6');
}

/** A HOST setting that only this machine can connect to: a loopback address or "localhost". */
export function isLoopbackHost(host: string): boolean {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  return bare.toLowerCase() === 'localhost' || isLoopbackAddress(bare);
}

/**
 * The addresses a request names besides its socket's peer: every hop of X-Forwarded-For and every
 * `for=` of Forwarded, whether or not TRUST_PROXY trusts them. A header that names no address
 * (`for=unknown`, junk) yields an entry that is no loopback address.
 */
function forwardedAddresses(req: Request): string[] {
  const addresses: string[] = [];
  const xff = req.headers['x-forwarded-for'];
  for (const value of Array.isArray(xff) ? xff : xff === undefined ? [] : [xff]) {
    addresses.push(...value.split(',').map((hop) => hop.trim()));
  }
  const forwarded = req.headers.forwarded;
  if (forwarded !== undefined) {
    const found = [...forwarded.matchAll(/for="?([^;,"]*)"?/gi)].map((match) => match[1] ?? '');
    // for="[2001:db8::1]:4711" and for="192.0.2.1:80": the address without brackets and port.
    addresses.push(
      ...(found.length > 0 ? found : ['']).map((value) => {
        const bracketed = /^\[([^\]]*)\]/.exec(value);
        if (bracketed) return bracketed[1] ?? '';
        return isIP(value) === 0 && value.includes(':')
          ? value.slice(0, value.indexOf(':'))
          : value;
      }),
    );
  }
  return addresses;
}

/**
 * True when the request comes from this machine and was not relayed for anybody else: its socket's
 * peer is a loopback address, and so is every address a forwarding header names. The headers are
 * read whatever TRUST_PROXY says: a reverse proxy on this machine connects over loopback too, and
 * what it relays for a remote client carries that client's address there. A relay that adds no
 * header (an SSH tunnel, a TCP forwarder) cannot be told apart from a local client.
 */
export function isFromThisMachine(req: Request): boolean {
  return (
    isLoopbackAddress(req.socket.remoteAddress) && forwardedAddresses(req).every(isLoopbackAddress)
  );
}
