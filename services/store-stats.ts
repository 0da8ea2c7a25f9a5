import { KEY_KINDS, type KeyKind, kindOfKey, recordPart } from '../src/store/keys';
import type { Store } from '../src/store/types';

export type KindCounts = Record<KeyKind, number>;

/** Every kind at zero, so a report always shows the same rows in the same order. */
export function emptyKindCounts(): KindCounts {
  const counts = {} as KindCounts;
  for (const kind of Object.values(KEY_KINDS)) counts[kind] = 0;
  counts.other = 0;
  return counts;
}

export interface StoreSummary {
  live: KindCounts;
  /** Expired entries still occupying space until the next cleanup (memory store only). */
  expired: number;
}

/**
 * Live entries per kind and expired entries, in one pass over every key: maintenance only (the
 * CLI), never on a request path. Undefined when the backend cannot enumerate keys (Memcached): a
 * caller must then say so rather than show zeros that look like an empty store. Expired entries
 * are not counted as live; they are no longer usable.
 */
export async function summarizeStore(store: Store): Promise<StoreSummary | undefined> {
  if (!store.scan) return undefined;
  const live = emptyKindCounts();
  let expired = 0;
  for await (const entry of store.scan()) {
    if (entry.ttlMs > 0) live[kindOfKey(entry.key)]++;
    else expired++;
  }
  return { live, expired };
}

const VISIBLE_CHARS = 6;

/**
 * A key shortened for display: namespace plus the first few characters of the rest. The rest is
 * often an HMAC that names a person's phone or a live session, and an operator's terminal or a
 * pasted log should never hold enough of it to be useful.
 */
export function maskKey(key: string, visible = VISIBLE_CHARS): string {
  // A record's part: its tag is the recipient's id, masked as any other id; its name is readable.
  const part = recordPart(key);
  if (part) {
    const tag = part.tag.length <= visible ? part.tag : `${part.tag.slice(0, visible)}…`;
    return `{${tag}}${maskKey(part.name, visible)}`;
  }
  const kind = Object.keys(KEY_KINDS).find((prefix) => key.startsWith(prefix)) ?? '';
  // Word-like sub-namespaces (`limit:cooldown:sms:`) say what a counter limits; keep them.
  const sub = /^(?:[a-z][a-z-]*:){0,2}/.exec(key.slice(kind.length))?.[0] ?? '';
  const namespace = kind + sub;
  const rest = key.slice(namespace.length);
  if (rest.length <= visible) return namespace + rest;
  return `${namespace}${rest.slice(0, visible)}…`;
}
