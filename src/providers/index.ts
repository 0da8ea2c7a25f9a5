import type { Config } from '../config';
import { ConfigError } from '../errors';
import type { Logger } from '../logger';
import { createMockEmailProvider, createMockSmsProvider, Outbox } from './mock';
import { createSendGridEmailProvider } from './sendgrid';
import { createTwilioSmsProvider } from './twilio';
import type { EmailProvider, SmsProvider } from './types';

export type {
  FaultInjection,
  MockEmailProvider,
  MockSmsProvider,
  OutboxEvent,
  OutboxListener,
} from './mock';
export { createMockEmailProvider, createMockSmsProvider, Outbox } from './mock';
export { FAULT_EMAIL_DOMAIN, MOCK_FAULTS, type MockFault } from './mock-faults';
export { createSendGridEmailProvider } from './sendgrid';
export { createTwilioSmsProvider } from './twilio';
export type {
  DeliveryReceipt,
  EmailMessage,
  EmailProvider,
  OutboxMessage,
  SmsMessage,
  SmsProvider,
} from './types';

export type ProviderConfig = Pick<
  Config,
  | 'NODE_ENV'
  | 'SMS_PROVIDER'
  | 'EMAIL_PROVIDER'
  | 'PROVIDER_TIMEOUT_MS'
  | 'TWILIO_ACCOUNT_SID'
  | 'TWILIO_AUTH_TOKEN'
  | 'TWILIO_FROM'
  | 'TWILIO_MESSAGING_SERVICE_SID'
  | 'SENDGRID_API_KEY'
  | 'EMAIL_FROM'
  | 'TWILIO_API_BASE_URL'
  | 'SENDGRID_API_BASE_URL'
  | 'MOCK_OUTBOX_SIZE'
  | 'SMS_TEMPLATE'
  | 'EMAIL_CODE_TEMPLATE'
>;

export interface ProviderDependencies {
  logger: Logger;
  /** Reuse an outbox, e.g. one a test reads from; otherwise one of MOCK_OUTBOX_SIZE is made. */
  outbox?: Outbox;
}

export interface Providers {
  sms: SmsProvider;
  email: EmailProvider;
  /** Present only when at least one mock is active: the real providers keep no copy. */
  outbox?: Outbox;
}

export function createProviders(config: ProviderConfig, deps: ProviderDependencies): Providers {
  const { logger } = deps;
  const usesMock = config.SMS_PROVIDER === 'mock' || config.EMAIL_PROVIDER === 'mock';
  const outbox = usesMock ? (deps.outbox ?? new Outbox(config.MOCK_OUTBOX_SIZE)) : undefined;
  const mockOptions = {
    logMessages: config.NODE_ENV === 'development',
    smsTemplate: config.SMS_TEMPLATE,
    emailCodeTemplate: config.EMAIL_CODE_TEMPLATE,
    timeoutMs: config.PROVIDER_TIMEOUT_MS,
  };

  const sms: SmsProvider =
    outbox && config.SMS_PROVIDER === 'mock'
      ? createMockSmsProvider(outbox, logger, mockOptions)
      : createTwilioSmsProvider({
          accountSid: required(
            config.TWILIO_ACCOUNT_SID,
            'TWILIO_ACCOUNT_SID',
            'SMS_PROVIDER=twilio',
          ),
          authToken: required(config.TWILIO_AUTH_TOKEN, 'TWILIO_AUTH_TOKEN', 'SMS_PROVIDER=twilio'),
          from: config.TWILIO_FROM,
          messagingServiceSid: config.TWILIO_MESSAGING_SERVICE_SID,
          timeoutMs: config.PROVIDER_TIMEOUT_MS,
          baseUrl: config.TWILIO_API_BASE_URL,
        });

  const email: EmailProvider =
    outbox && config.EMAIL_PROVIDER === 'mock'
      ? createMockEmailProvider(outbox, logger, mockOptions)
      : createSendGridEmailProvider({
          apiKey: required(config.SENDGRID_API_KEY, 'SENDGRID_API_KEY', 'EMAIL_PROVIDER=sendgrid'),
          from: required(config.EMAIL_FROM, 'EMAIL_FROM', 'EMAIL_PROVIDER=sendgrid'),
          timeoutMs: config.PROVIDER_TIMEOUT_MS,
          baseUrl: config.SENDGRID_API_BASE_URL,
        });

  return outbox ? { sms, email, outbox } : { sms, email };
}

/** loadConfig already checks these, but the Config type cannot express the dependency. */
function required(value: string | undefined, name: string, when: string): string {
  if (!value) throw new ConfigError(`Missing ${name}: required when ${when}.`);
  return value;
}
