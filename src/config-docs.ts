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
  SHUTDOWN_DELAY_MS: {
    group: 'Server',
    text: 'After SIGTERM, keep serving this long while /health and /health/ready answer 503, so a load balancer stops sending before the listener closes (not after SIGINT)',
  },
  SHUTDOWN_TIMEOUT_MS: {
    group: 'Server',
    text: 'After the listener closes, the longest wait for requests in flight; then the remaining connections are cut and the process exits',
  },
  WORKERS: {
    group: 'Server',
    text: 'Worker processes sharing PORT (node:cluster), each with its own store client; auto is one per CPU core; more than 1 needs a shared store (any STORE but memory)',
  },
  CORS_ORIGINS: {
    group: 'Server',
    text: 'Comma-separated exact browser origins (https://app.example.com) allowed to call the API cross-origin, without credentials; empty allows none',
  },
  METRICS_TOKEN: {
    group: 'Server',
    text: 'Bearer token GET /metrics requires; outside NODE_ENV=development /metrics on PORT is served only with it (at least 32 bytes in production)',
  },
  METRICS_PORT: {
    group: 'Server',
    text: 'Serve GET /metrics on this port of HOST instead, apart from the API (with WORKERS, the sum over all workers); METRICS_TOKEN is then optional',
  },
  STORE: {
    group: 'Store',
    text: 'memory (one process only), redis, memcached, postgres (a table in PostgreSQL) or sqlite (a file, for one host)',
  },
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
  DATABASE_URL: {
    group: 'Store',
    text: 'PostgreSQL connection URL when STORE=postgres, e.g. postgres://verifyd:secret@db:5432/app; add ?options=-c%20search_path%3Dverifyd for a schema of its own',
  },
  DATABASE_POOL_SIZE: {
    group: 'Store',
    text: 'PostgreSQL connections each verifyd process keeps at most (STORE=postgres)',
  },
  SQLITE_PATH: {
    group: 'Store',
    text: 'Database file when STORE=sqlite (created if missing; every process on the host that shares it must use the same path)',
  },
  KEY_PREFIX: {
    group: 'Store',
    text: 'Prefix of every key the service writes; with postgres and sqlite, of its table names (verifyd: gives verifyd_entries)',
  },
  STORE_TIMEOUT_MS: {
    group: 'Store',
    text: 'A store call that has not answered within this fails with 503 store_unavailable (Redis checks every quarter of it)',
  },
  CLEANUP_INTERVAL_SECONDS: {
    group: 'Store',
    text: 'How often expired entries are removed where the backend does not expire them itself (memory, postgres, sqlite)',
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
  SMS_PUMPING_DEFENCES: {
    group: 'SMS pumping',
    text: 'auto (on with a real SMS provider, off with the mock), on or off: the number-type, country, prefix, conversion-rate and daily-budget defences below',
  },
  SMS_ALLOWED_NUMBER_TYPES: {
    group: 'SMS pumping',
    text: 'Number types SMS may go to (libphonenumber-js, lower case): mobile, fixed_line_or_mobile, fixed_line, toll_free, premium_rate, shared_cost, voip, personal_number, pager, uan, voicemail, unknown (a number it cannot type); or any. Others get 403 number_type_not_allowed',
  },
  SMS_COUNTRY_HOURLY_LIMIT: {
    group: 'SMS pumping',
    text: 'SMS per destination country per clock hour before each send needs a bot-protection proof: a number for every country and/or overrides, e.g. 250,US:800,GB:200 (001: numbers outside any country)',
  },
  SMS_COUNTRY_REFUSE_FACTOR: {
    group: 'SMS pumping',
    text: 'Past this many times its SMS_COUNTRY_HOURLY_LIMIT, a country gets 429 country_limit_reached until the hour ends',
  },
  SMS_PREFIX_DROP_DIGITS: {
    group: 'SMS pumping',
    text: 'A prefix is the number without this many last digits (3: blocks of 1,000 numbers); never shorter than the calling code and the first national digit',
  },
  SMS_PREFIX_HOURLY_DISTINCT: {
    group: 'SMS pumping',
    text: 'Distinct numbers of one prefix SMS may go to within an hour; the next one blocks the prefix (403 prefix_blocked)',
  },
  SMS_PREFIX_BLOCK_SECONDS: { group: 'SMS pumping', text: 'How long a prefix block lasts' },
  SMS_CONVERSION_FLOOR: {
    group: 'SMS pumping',
    text: "Share of numbers sent a code that must enter it: a country's or prefix's sends escalate (proof, then 403 destination_suspended) when the 95% Wilson upper bound of its rate is below this",
  },
  SMS_CONVERSION_MIN_SAMPLE: {
    group: 'SMS pumping',
    text: 'Numbers sent a code within the window before a conversion rate is judged (and again at the proof stage before refusal)',
  },
  SMS_CONVERSION_WINDOW_SECONDS: {
    group: 'SMS pumping',
    text: 'Sliding window over which conversion rates are counted',
  },
  SMS_CONVERSION_HOLD_SECONDS: {
    group: 'SMS pumping',
    text: 'A conversion escalation lasts this long after the rate was last credibly below the floor',
  },
  SMS_DAILY_SOFT_BUDGET: {
    group: 'SMS pumping',
    text: 'SMS per 24 hours past which every send needs a bot-protection proof (0 disables); SMS_HOURLY_BUDGET stays the hard cap',
  },
  SMS_SAFE_LIST: {
    group: 'SMS pumping',
    text: 'Comma-separated E.164 numbers or prefixes (e.g. +4474001) that bypass the pumping defences, not the per-recipient limits',
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
  TEST_IDENTITIES: {
    group: 'Testing',
    text: 'Phone numbers that verify with a fixed code and get no SMS, for CI and app-store review: +15005550006=123456,+15005550007=654321:2027-03-01 (number=code, optionally :expiry); exempt from send limits, not from attempt limits; see Test identities',
  },
  TEST_IDENTITIES_EXPIRE: {
    group: 'Testing',
    text: 'Expiry of the TEST_IDENTITIES entries that name none: a date (2027-03-01, the entry stops at 00:00 UTC that day) or an ISO 8601 time; production refuses any expiry more than 90 days away',
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
