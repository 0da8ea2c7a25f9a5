import type { configSchema } from './config';

type Variable = keyof typeof configSchema.shape;

/**
 * One line per variable for .env.example and the README table. Typed against the schema, so a new
 * variable without a description does not compile; test/config.test.ts checks both documents.
 */
export const CONFIG_DOCS: Record<Variable, { group: string; text: string }> = {
  NODE_ENV: {
    group: 'Server',
    text: 'development, test or production; production refuses mocks, the memory store and weak secrets',
  },
  PORT: { group: 'Server', text: 'TCP port to listen on' },
  HOST: { group: 'Server', text: 'Address to listen on; 0.0.0.0 to accept outside connections' },
  LOG_LEVEL: {
    group: 'Server',
    text: 'pino level: fatal, error, warn, info, debug, trace or silent',
  },
  TRUST_PROXY: {
    group: 'Server',
    text: 'Express "trust proxy": false, a hop count, or comma-separated proxy IP addresses, CIDR subnets, loopback, linklocal or uniquelocal; needed for per-client limits behind a proxy (true, which believes any X-Forwarded-For, is refused in production)',
  },
  IPV6_SUBNET: {
    group: 'Server',
    text: 'Prefix length (32-64) of the IPv6 network every per-client limit counts as one client; IPv4 clients count per address',
  },
  PUBLIC_URL: {
    group: 'Server',
    text: "The service's public base URL, e.g. https://verify.example.com; email links and absolute URLs derive from it (production needs it or EMAIL_LINK_BASE_URL)",
  },
  HTTP_HEADERS_TIMEOUT_MS: {
    group: 'Server',
    text: "A client that has not sent a request's headers within this is answered 408 and disconnected (Node's default: 60 s)",
  },
  HTTP_REQUEST_TIMEOUT_MS: {
    group: 'Server',
    text: "A client that has not sent a whole request, headers and body, within this is answered 408 and disconnected (Node's default: 300 s); at least HTTP_HEADERS_TIMEOUT_MS",
  },
  HTTP_KEEP_ALIVE_TIMEOUT_MS: {
    group: 'Server',
    text: "An idle keep-alive connection is closed after this (Node adds a second); behind a load balancer, make it longer than the balancer's idle timeout",
  },
  STORE: { group: 'Store', text: 'memory (one process only), redis or memcached' },
  REDIS_URL: {
    group: 'Store',
    text: 'Redis connection URL when STORE=redis: redis://, rediss:// (TLS) or unix://',
  },
  REDIS_CLUSTER_NODES: {
    group: 'Store',
    text: 'Comma-separated host:port seed nodes of a Redis Cluster when STORE=redis; set means cluster mode, and REDIS_URL then only lends its credentials and scheme (rediss:// for TLS) to every node',
  },
  MEMCACHED_SERVERS: {
    group: 'Store',
    text: 'Comma-separated host:port list when STORE=memcached',
  },
  KEY_PREFIX: { group: 'Store', text: 'Prefix of every key the service writes' },
  STORE_TIMEOUT_MS: {
    group: 'Store',
    text: 'A store call that has not answered within this fails with 503 store_unavailable (Redis checks every quarter of it)',
  },
  CLEANUP_INTERVAL_SECONDS: {
    group: 'Store',
    text: 'How often expired entries are swept where the backend does not expire them itself (memory)',
  },
  OTP_SECRET: {
    group: 'Secrets',
    text: 'HMAC key for codes, challenges and store keys; at least 32 bytes in production; the same on every instance',
  },
  JWT_SECRET: {
    group: 'Secrets',
    text: 'HS256 key for proofs (email-link keys derive from it); at least 32 bytes in production; the same on every instance',
  },
  WEBHOOK_SECRET: {
    group: 'Secrets',
    text: 'HMAC key for webhook signatures, its own (never JWT_SECRET or OTP_SECRET): production needs it, of at least 32 bytes, when VERIFIED_WEBHOOK_URL is set',
  },
  OTP_LENGTH: { group: 'Codes and links', text: 'Digits per SMS code, 4 to 10' },
  OTP_TTL_SECONDS: { group: 'Codes and links', text: 'Lifetime of an SMS code' },
  OTP_MAX_ATTEMPTS: {
    group: 'Codes and links',
    text: 'Checks per SMS code before it is dead',
  },
  PURPOSES: {
    group: 'Codes and links',
    text: 'Comma-separated purposes a request may name (each 1-32 of A-Z a-z 0-9 _ . -); any other is 400 invalid_request. A body without purpose means verification',
  },
  SMS_TEMPLATE: { group: 'Codes and links', text: 'SMS text; {code} is replaced by the code' },
  EMAIL_TOKEN_TTL_SECONDS: { group: 'Codes and links', text: 'Lifetime of an email link' },
  EMAIL_LINK_BASE_URL: {
    group: 'Codes and links',
    text: "Page the email link opens (?token= is appended); default: this service's GET /verify-email-token",
  },
  EMAIL_SUBJECT: { group: 'Codes and links', text: 'Subject of the verification email' },
  EMAIL_CODE_SUBJECT: {
    group: 'Codes and links',
    text: 'Subject of the email that carries a code (POST /verify-email with "method": "code", and Channel=email of the Twilio-compatible API)',
  },
  EMAIL_CODE_TEMPLATE: {
    group: 'Codes and links',
    text: 'Text of that email, containing {code}; the HTML part sets the code in bold',
  },
  JWT_ISSUER: { group: 'Codes and links', text: 'iss claim of email links and proofs' },
  PROOF_AUDIENCE: { group: 'Codes and links', text: 'aud claim of proofs; your app checks it' },
  PROOF_TTL_SECONDS: { group: 'Codes and links', text: 'Lifetime of a proof JWT' },
  RESEND_MAX: { group: 'Limits', text: 'Resends per target per RESEND_WINDOW_SECONDS' },
  RESEND_WINDOW_SECONDS: { group: 'Limits', text: 'Window of RESEND_MAX' },
  SEND_COOLDOWN_SECONDS: {
    group: 'Limits',
    text: 'Minimum time between two sends to one target (0 disables)',
  },
  SEND_MAX_PER_TARGET: { group: 'Limits', text: 'Sends per target per SEND_TARGET_WINDOW_SECONDS' },
  SEND_TARGET_WINDOW_SECONDS: { group: 'Limits', text: 'Window of SEND_MAX_PER_TARGET' },
  TARGET_MAX_FAILURES: {
    group: 'Limits',
    text: 'Wrong codes per target per TARGET_FAILURE_WINDOW_SECONDS in checks without a verificationId, across codes, purposes and resends, before such checks of the target lock',
  },
  TARGET_FAILURE_WINDOW_SECONDS: {
    group: 'Limits',
    text: 'Window of TARGET_MAX_FAILURES (the lock lasts until it ends)',
  },
  TARGET_MAX_DAILY_FAILURES: {
    group: 'Limits',
    text: 'Wrong codes per target per 24 hours over every path, with or without a verificationId (NIST SP 800-63B: at most 100); then every check of the target is refused until the day ends',
  },
  CHECK_BY_RECIPIENT: {
    group: 'Limits',
    text: 'Accept checks without a verificationId (by number alone); false refuses them, and with them what they reveal to strangers (recommended for new integrations)',
  },
  IP_MAX_TARGETS_PER_HOUR: {
    group: 'Limits',
    text: 'Distinct phone numbers/mailboxes one client (IPv4 address or IPv6 network) may send to per hour',
  },
  SMS_ALLOWED_COUNTRIES: {
    group: 'Limits',
    text: 'Comma-separated ISO country codes that may receive SMS; empty allows all',
  },
  SMS_HOURLY_BUDGET: {
    group: 'Limits',
    text: 'SMS sent per hour by the whole deployment; beyond it sends get 503 sms_budget_exhausted',
  },
  RATE_LIMIT_WINDOW_SECONDS: { group: 'Limits', text: 'Window of the per-client request limit' },
  RATE_LIMIT_MAX: {
    group: 'Limits',
    text: 'Requests per client (IPv4 address or IPv6 network) per window, over all routes but /health',
  },
  VERIFIED_WEBHOOK_URL: {
    group: 'Webhook',
    text: 'Receives verification.approved events when set',
  },
  WEBHOOK_TIMEOUT_MS: { group: 'Webhook', text: 'Timeout of one webhook call' },
  WEBHOOK_RETRIES: {
    group: 'Webhook',
    text: 'Retries of a failed webhook call, with doubling delays',
  },
  SMS_PROVIDER: { group: 'Providers', text: 'mock or twilio' },
  EMAIL_PROVIDER: { group: 'Providers', text: 'mock or sendgrid' },
  PROVIDER_TIMEOUT_MS: {
    group: 'Providers',
    text: 'A provider call slower than this fails with 502 delivery_failed of unknown outcome: the code stays valid and the send counts',
  },
  TWILIO_ACCOUNT_SID: {
    group: 'Providers',
    text: 'Twilio account SID, AC and 32 hex digits (SMS_PROVIDER=twilio)',
  },
  TWILIO_AUTH_TOKEN: { group: 'Providers', text: 'Twilio auth token (SMS_PROVIDER=twilio)' },
  TWILIO_FROM: {
    group: 'Providers',
    text: 'Sender: a number in E.164 or an alphanumeric sender ID (up to 11 letters, digits and spaces); or set TWILIO_MESSAGING_SERVICE_SID',
  },
  TWILIO_MESSAGING_SERVICE_SID: {
    group: 'Providers',
    text: 'Twilio messaging service SID, MG and 32 hex digits; used instead of TWILIO_FROM when set',
  },
  SENDGRID_API_KEY: { group: 'Providers', text: 'SendGrid API key (EMAIL_PROVIDER=sendgrid)' },
  EMAIL_FROM: {
    group: 'Providers',
    text: 'Sender of verification emails: an address, or Name <address> (EMAIL_PROVIDER=sendgrid)',
  },
  TWILIO_API_BASE_URL: {
    group: 'Providers',
    text: 'Base URL of the Twilio REST API, for a Twilio-compatible gateway or a local test server',
  },
  SENDGRID_API_BASE_URL: {
    group: 'Providers',
    text: "Base URL of the SendGrid v3 API, e.g. SendGrid's EU endpoint https://api.eu.sendgrid.com",
  },
  MOCK_OUTBOX_SIZE: {
    group: 'Providers',
    text: 'Messages the mock providers keep for GET /dev/outbox',
  },
  DEV_ROUTES_PUBLIC: {
    group: 'Providers',
    text: 'Serve GET/DELETE /dev/outbox to every client, not only to loopback clients (never in production); for an app container reaching a verifyd container in CI',
  },
  TWILIO_COMPAT: {
    group: 'Twilio-compatible API',
    text: 'on serves a Twilio Verify v2 compatible API under /v2 (see "Replacing Twilio Verify"); off by default',
  },
  TWILIO_COMPAT_ACCOUNT_SID: {
    group: 'Twilio-compatible API',
    text: 'The Account SID its clients authenticate with (AC followed by 32 hexadecimal digits, as the SDK demands); required when TWILIO_COMPAT=on',
  },
  TWILIO_COMPAT_AUTH_TOKEN: {
    group: 'Twilio-compatible API',
    text: 'The Auth Token its clients authenticate with; required when TWILIO_COMPAT=on, at least 32 bytes in production',
  },
  BOT_PROTECTION: {
    group: 'Bot protection',
    text: 'off or pow (ALTCHA proof-of-work) in front of the send routes',
  },
  BOT_PROTECTION_MODE: {
    group: 'Bot protection',
    text: 'always, or adaptive: only after BOT_PROTECTION_FREE_SENDS sends per client per hour',
  },
  BOT_PROTECTION_FREE_SENDS: {
    group: 'Bot protection',
    text: 'Sends per client (IPv4 address or IPv6 network) per hour without a challenge in adaptive mode',
  },
  CHALLENGE_MAX_NUMBER: {
    group: 'Bot protection',
    text: "Proof-of-work difficulty of a client's first challenges in an hour: the most hashes one may need",
  },
  CHALLENGE_DOUBLE_EVERY: {
    group: 'Bot protection',
    text: 'The difficulty doubles after every this many challenges one client fetched within an hour',
  },
  CHALLENGE_MAX_NUMBER_CAP: {
    group: 'Bot protection',
    text: 'The most the doubling may raise a challenge to (at least CHALLENGE_MAX_NUMBER)',
  },
  CHALLENGE_TTL_SECONDS: { group: 'Bot protection', text: 'Lifetime of a proof-of-work challenge' },
  CHALLENGE_SESSION_TTL_SECONDS: {
    group: 'Bot protection',
    text: 'Lifetime of the session a solved challenge earns',
  },
  CHALLENGE_SESSION_MAX_SENDS: {
    group: 'Bot protection',
    text: 'Sends one challenge session pays for, from the client that redeemed it',
  },
};
