/**
 * Every store key verifyd writes, built here and nowhere else, so that the layout is readable in
 * one place, the maintenance CLI and /health derive the kinds from it, and `clear` removes exactly
 * the service's own keys. The one exception is the SMS pumping defences' `fraud:` namespace,
 * built with the windows it is numbered by in services/pumping/keys.ts (its kind is listed below).
 *
 * Placement: what is in braces places a key where the store spreads keys over several servers
 * (Redis Cluster hash slots, memcached servers; see Store). A client's state shares its client
 * key's tag, so a send touches at most three places (recipient, client, SMS budget) and an attempt
 * exactly one. Recipient ids and client keys never contain braces (a recipient id is an HMAC in
 * base64url; a client key an IP address or network).
 *
 * Records: all of one recipient's state (its verifications, cooldowns, send counts, failure
 * windows and pending Twilio-compatible verification) is built as parts of the recipient's record,
 * keys that begin with the recipient's id in braces (see Store, "Records"). A backend may keep a
 * record as one entry: on Redis it is one key, so a send to a new number creates one key for the
 * recipient instead of three, and a wrong code none. Client state stays in keys of its own: a
 * client's markers are one per recipient it sent to, which no bounded record could hold.
 */
export type Channel = 'sms' | 'email';

export const keys = {
  /** A verification's codes (sms) or links (email): see SecretWrite. */
  verification: (channel: Channel, purpose: string, recipient: string) =>
    channel === 'sms' ? `{${recipient}}code:${purpose}` : `{${recipient}}email:${purpose}`,
  /** A verification's emailed codes (POST /verify-email with method "code"). */
  emailCode: (purpose: string, recipient: string) => `{${recipient}}email-code:${purpose}`,
  /** A Twilio-compatible Verify service (see routes/twilio-compat), and its slot in the list. */
  twilioService: (sid: string) => `twilio:service:${sid}`,
  twilioServiceSlot: (slot: number) => `twilio:service-slot:${slot}`,
  twilioServiceSlots: () => 'twilio:service-slots',
  /** A Twilio-compatible verification (VE sid), and the one pending per service and recipient. */
  twilioVerification: (sid: string) => `twilio:verification:${sid}`,
  twilioPending: (service: string, channel: Channel, recipient: string) =>
    `{${recipient}}twilio:pending:${service}:${channel}`,
  /** A recipient's cooldown gate; holds when it ends (epoch ms). */
  cooldown: (channel: Channel, recipient: string) => `{${recipient}}limit:cooldown:${channel}`,
  /** Sends to a recipient per SEND_TARGET_WINDOW_SECONDS. */
  sends: (channel: Channel, recipient: string) => `{${recipient}}limit:send:${channel}`,
  /** Resends to a recipient per RESEND_WINDOW_SECONDS. */
  resends: (channel: Channel, recipient: string) => `{${recipient}}limit:resend:${channel}`,
  /** Wrong codes for a recipient per TARGET_FAILURE_WINDOW_SECONDS (checks by recipient alone). */
  failures: (recipient: string) => `{${recipient}}limit:fail`,
  /** Wrong codes for a recipient per day, on every path. */
  dailyFailures: (recipient: string) => `{${recipient}}limit:fail-day`,
  /** Distinct recipients a client sent to this hour, and the marker of each one counted. */
  clientRecipients: (client: string) => `limit:ip-targets:{${client}}`,
  clientRecipient: (client: string, recipient: string) =>
    `limit:ip-target:{${client}}:${recipient}`,
  /** The deployment's SMS per hour. One key: see README, "Storage". */
  smsBudget: () => 'limit:sms-budget',
  /** Sends a client made this hour, for the adaptive bot-protection policy. */
  botSends: (client: string) => `limit:bot:{${client}}`,
  /** Challenges a client fetched this window, which scales their difficulty. */
  challengeVolume: (client: string) => `limit:pow:{${client}}`,
  /** A solved challenge, so that it is redeemed once. */
  challenge: (id: string) => `challenge:${id}`,
  /** A challenge session's owner, and the sends it paid for. */
  session: (id: string) => `session:${id}`,
  sessionSends: (id: string) => `limit:session:{${id}}`,
  /** The per-client request limit (express-rate-limit's store). */
  requests: (client: string) => `rl:ip:{${client}}`,
} as const;

/** What each key namespace holds, for `cli stats` and `cli list`. */
export const KEY_KINDS = {
  'code:': 'phone code',
  'email:': 'email token',
  'email-code:': 'email code',
  'twilio:': 'twilio-compatible record',
  'challenge:': 'challenge',
  'session:': 'challenge session',
  'rl:': 'rate-limit counter',
  'limit:': 'send/attempt limit',
  'fraud:': 'pumping defence',
} as const;

export type KeyKind = (typeof KEY_KINDS)[keyof typeof KEY_KINDS] | 'other';

/** A record's part (`{tag}name`, see Store): its record's tag and its name within the record. */
export function recordPart(key: string): { tag: string; name: string } | undefined {
  const match = RECORD_PART.exec(key);
  return match ? { tag: match[1] as string, name: match[2] as string } : undefined;
}

const RECORD_PART = /^\{([^{}]+)\}(.*)$/s;

export function kindOfKey(key: string): KeyKind {
  const name = recordPart(key)?.name ?? key;
  for (const [prefix, kind] of Object.entries(KEY_KINDS)) {
    if (name.startsWith(prefix)) return kind as KeyKind;
  }
  return 'other';
}
