/**
 * Every key the service writes starts with one of these namespaces (after KEY_PREFIX), so the
 * maintenance CLI can tell kinds apart and `clear` can remove exactly the service's own keys.
 */
export const KEY_KINDS = {
  'code:': 'phone code',
  'email:': 'email token',
  'challenge:': 'challenge',
  'session:': 'challenge session',
  'rl:': 'rate-limit counter',
  'limit:': 'send/attempt limit',
  'fraud:': 'pumping defence',
} as const;

export type KeyKind = (typeof KEY_KINDS)[keyof typeof KEY_KINDS] | 'other';

export function kindOfKey(key: string): KeyKind {
  for (const [prefix, kind] of Object.entries(KEY_KINDS)) {
    if (key.startsWith(prefix)) return kind as KeyKind;
  }
  return 'other';
}
