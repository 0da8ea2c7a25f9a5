/**
 * Every store key verifyd writes, built here and nowhere else, so that the layout is readable in
 * one place, the maintenance CLI and /health derive the kinds from it, and `clear` removes exactly
 * the service's own keys. The one exception is the SMS pumping defences' `fraud:` namespace,
 * built with the windows it is numbered by in services/pumping/keys.ts (its kind is listed below).
 *
 * Placement: what is in braces places a key where the store spreads keys over several servers
 * (Redis Cluster hash slots, memcached servers; see Store). A recipient's state shares its id's
 * tag, a client's state its client key's tag, so a send touches at most three places (recipient,
 * client, SMS budget) and an attempt exactly one. Recipient ids and client keys never contain
 * braces (a recipient id is an HMAC in base64url; a client key an IP address or network).
 */
export type Channel = 'sms' | 'email';

export const keys = {
  /** A verification's codes (sms) or links (email): see SecretWrite. */
  verification: (channel: Channel, purpose: string, recipient: string) =>
    channel === 'sms' ? `code:${purpose}:{${recipient}}` : `email:${purpose}:{${recipient}}`,
  /** A verification's emailed codes (POST /verify-email with method "code"). */
  emailCode: (purpose: string, recipient: string) => `email-code:${purpose}:{${recipient}}`,
  /** A Twilio-compatible Verify service (see routes/twilio-compat), and its slot in the list. */
  twilioService: (sid: string) => `twilio:service:${sid}`,
  twilioServiceSlot: (slot: number) => `twilio:service-slot:${slot}`,
  twilioServiceSlots: () => 'twilio:service-slots',
  /** A Twilio-compatible verification (VE sid), and the one pending per service and recipient. */
  twilioVerification: (sid: string) => `twilio:verification:${sid}`,
  twilioPending: (service: string, channel: Channel, recipient: string) =>
    `twilio:pending:${service}:${channel}:{${recipient}}`,
  /** A recipient's cooldown gate; holds when it ends (epoch ms). */
  cooldown: (channel: Channel, recipient: string) => `limit:cooldown:${channel}:{${recipient}}`,
  /** Sends to a recipient per SEND_TARGET_WINDOW_SECONDS. */
  sends: (channel: Channel, recipient: string) => `limit:send:${channel}:{${recipient}}`,
  /** Resends to a recipient per RESEND_WINDOW_SECONDS. */
  resends: (channel: Channel, recipient: string) => `limit:resend:${channel}:{${recipient}}`,
  /** Wrong codes for a recipient per TARGET_FAILURE_WINDOW_SECONDS (checks by recipient alone). */
  failures: (recipient: string) => `limit:fail:{${recipient}}`,
  /** Wrong codes for a recipient per day, on every path. */
  dailyFailures: (recipient: string) => `limit:fail-day:{${recipient}}`,
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

export function kindOfKey(key: string): KeyKind {
  for (const [prefix, kind] of Object.entries(KEY_KINDS)) {
    if (key.startsWith(prefix)) return kind as KeyKind;
  }
  return 'other';
}
