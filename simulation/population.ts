import { getExampleNumber, parsePhoneNumberFromString } from 'libphonenumber-js/max';
import examples from 'libphonenumber-js/mobile/examples';

/** A seeded generator (mulberry32), so a run with the same seed meets the same people and bots. */
export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  }
  int(maxExclusive: number): number {
    return Math.floor(this.next() * maxExclusive);
  }
  between(min: number, max: number): number {
    return min + this.next() * (max - min);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)] as T;
  }
  /** Seconds to the next arrival of a Poisson process with `perHour` arrivals an hour. */
  interval(perHour: number): number {
    return (-Math.log(1 - this.next()) * 3600) / perHour;
  }
  /** An index drawn by weight. */
  weighted(weights: readonly number[]): number {
    const total = weights.reduce((a, b) => a + b, 0);
    let x = this.next() * total;
    for (const [i, w] of weights.entries()) {
      x -= w;
      if (x < 0) return i;
    }
    return weights.length - 1;
  }
}

const digits = (rng: Rng, n: number) => Array.from({ length: n }, () => rng.int(10)).join('');

const PERSONAL_TYPES = new Set(['MOBILE', 'FIXED_LINE_OR_MOBILE']);

/**
 * A random number that libphonenumber types as a personal line: the country's example mobile
 * number with all but its first two national digits drawn anew, so people spread over the
 * country's mobile ranges as subscribers do, and rarely share a prefix within an hour.
 */
export function personalNumber(rng: Rng, country: string): string {
  const example = getExampleNumber(country as never, examples);
  if (!example) throw new Error(`no example number for ${country}`);
  const national = String(example.nationalNumber);
  for (let attempt = 0; attempt < 200; attempt++) {
    const candidate = `+${example.countryCallingCode}${national.slice(0, 2)}${digits(rng, national.length - 2)}`;
    const parsed = parsePhoneNumberFromString(candidate);
    if (parsed?.isValid() && PERSONAL_TYPES.has(parsed.getType() ?? '')) return parsed.number;
  }
  return example.number;
}

/**
 * A range a pumping partner owns: the example mobile number's first digits, with the last five
 * walked from a random start (100,000 numbers, a hundred blocks of 1,000).
 */
export function ownedRange(
  rng: Rng,
  country: string,
): { head: string; width: number; start: number } {
  const example = getExampleNumber(country as never, examples);
  if (!example) throw new Error(`no example number for ${country}`);
  const national = String(example.nationalNumber);
  const width = 5;
  return {
    head: `+${example.countryCallingCode}${national.slice(0, national.length - width)}`,
    width,
    start: rng.int(10 ** width),
  };
}

/** Whether libphonenumber takes the number as valid: a walker skips what the API would refuse. */
export function isValidNumber(e164: string): boolean {
  return parsePhoneNumberFromString(e164)?.isValid() === true;
}

/**
 * Numbers in premium-rate, shared-cost and similar ranges, found by drawing digits after the
 * leading digits of such ranges and keeping what libphonenumber types as neither mobile nor
 * fixed line.
 */
export function premiumNumbers(rng: Rng, count: number): string[] {
  const heads = ['+44909', '+44871', '+3389', '+3381', '+49900', '+3989', '+44560', '+4470'];
  const found: string[] = [];
  for (let attempt = 0; found.length < count && attempt < count * 500; attempt++) {
    const head = rng.pick(heads);
    const candidate = `${head}${digits(rng, 6 + rng.int(3))}`;
    const parsed = parsePhoneNumberFromString(candidate);
    const type = parsed?.isValid() ? parsed.getType() : undefined;
    if (type && !PERSONAL_TYPES.has(type) && type !== 'FIXED_LINE') found.push(parsed!.number);
  }
  return found;
}

/** A public-looking IPv4 address: never 0, 10, 127, 169.254, 172.16/12, 192.168 or multicast. */
export function ipv4(rng: Rng): string {
  for (;;) {
    const a = 1 + rng.int(223);
    const b = rng.int(256);
    if (a === 10 || a === 127 || (a === 169 && b === 254) || (a === 172 && b >= 16 && b < 32)) {
      continue;
    }
    if (a === 192 && b === 168) continue;
    return `${a}.${b}.${rng.int(256)}.${1 + rng.int(254)}`;
  }
}

const hex16 = (rng: Rng) => rng.int(0x10000).toString(16);

/** An IPv6 address in a /56 of its own (a household: one of the 2^56 networks). */
export function ipv6Household(rng: Rng): string {
  const groups = [
    '2a02',
    hex16(rng),
    hex16(rng),
    hex16(rng),
    ...Array.from({ length: 4 }, () => hex16(rng)),
  ];
  return groups.join(':');
}

/** An IPv6 address anywhere inside one /48 (2001:db8:77::/48): 256 /56 networks, 2^80 addresses. */
export function ipv6In48(rng: Rng): string {
  const groups = ['2001', 'db8', '77', hex16(rng), ...Array.from({ length: 4 }, () => hex16(rng))];
  return groups.join(':');
}
