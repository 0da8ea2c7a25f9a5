import { type HttpRequestLike, type OpenApiFragment, OpenApiValidator } from '../support/openapi';
import sendgridSpec from './spec/sendgrid-mail-send.json';
import twilioSpec from './spec/twilio-messages-create.json';

/**
 * The fake providers are only as strict as this validator: each rule the provider tests lean on
 * is shown here to catch a request that breaks it.
 */

const SID = 'AC0123456789abcdef0123456789abcdef';
const twilio = new OpenApiValidator(twilioSpec as OpenApiFragment);
const sendgrid = new OpenApiValidator(sendgridSpec as OpenApiFragment);

function twilioRequest(
  form: Record<string, string | string[]>,
  overrides: Partial<HttpRequestLike> = {},
): HttpRequestLike {
  const body = new URLSearchParams();
  for (const [name, value] of Object.entries(form)) {
    for (const v of Array.isArray(value) ? value : [value]) body.append(name, v);
  }
  return {
    method: 'POST',
    url: `/2010-04-01/Accounts/${SID}/Messages.json`,
    headers: {
      authorization: `Basic ${Buffer.from(`${SID}:token`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: body.toString(),
    ...overrides,
  };
}

const GOOD_FORM = {
  To: '+15558675310',
  From: '+15005550006',
  Body: 'code 123456',
  ValidityPeriod: '600',
};

function mailRequest(mail: unknown, overrides: Partial<HttpRequestLike> = {}): HttpRequestLike {
  return {
    method: 'POST',
    url: '/v3/mail/send',
    headers: { authorization: 'Bearer SG.key', 'content-type': 'application/json' },
    body: JSON.stringify(mail),
    ...overrides,
  };
}

const GOOD_MAIL = {
  from: { email: 'no-reply@example.com', name: 'verifyd' },
  subject: 'Confirm',
  personalizations: [{ to: [{ email: 'ada@example.org' }] }],
  content: [{ type: 'text/plain', value: 'link' }],
  tracking_settings: {
    click_tracking: { enable: false, enable_text: false },
    open_tracking: { enable: false },
    subscription_tracking: { enable: false },
  },
};

describe('spec fragments', () => {
  it.each([
    [twilioSpec, 'twilio/twilio-oai', 'spec/json/twilio_api_v2010.json'],
    [sendgridSpec, 'twilio/sendgrid-oai', 'spec/json/tsg_mail_v3.json'],
  ])('name their source, file, version and commit', (spec, repository, file) => {
    expect(spec['x-source']).toMatchObject({ repository, file });
    expect(spec['x-source'].version).toMatch(/\S/);
    expect(spec['x-source'].commit).toMatch(/^[0-9a-f]{40}$/);
  });
});

describe('OpenAPI validator: Twilio CreateMessage', () => {
  it('accepts a documented form', () => {
    expect(twilio.validateRequest(twilioRequest(GOOD_FORM))).toEqual([]);
    expect(
      twilio.validateRequest(
        twilioRequest({
          To: '+15558675310',
          MessagingServiceSid: 'MG0123456789abcdef0123456789abcdef',
          Body: 'x',
        }),
      ),
    ).toEqual([]);
  });

  it.each(
    (
      [
        [{ ...GOOD_FORM, ValidityPeriod: '36001' }, 'body.ValidityPeriod: 36001 is above 36000'],
        [{ ...GOOD_FORM, ValidityPeriod: '0' }, 'body.ValidityPeriod: 0 is below 1'],
        [
          { ...GOOD_FORM, ValidityPeriod: '60.5' },
          'body.ValidityPeriod: expected integer, got number',
        ],
        [
          { ...GOOD_FORM, ValidityPeriod: 'soon' },
          'body.ValidityPeriod: expected integer, got string',
        ],
        [
          { To: '+15558675310', Body: 'x', Validityperiod: '600' },
          'body.Validityperiod: not a property of this schema',
        ],
        [{ From: '+15005550006', Body: 'x' }, 'body.To: required'],
        [{ ...GOOD_FORM, To: '0049 170 1234567' }, 'body.To: not a valid phone-number'],
        [
          { To: '+15558675310', Body: 'x', MessagingServiceSid: 'MG123' },
          'body.MessagingServiceSid: shorter than 34',
        ],
        [{ ...GOOD_FORM, Body: ['a', 'b'] }, 'body.Body: sent 2 times'],
      ] as [Record<string, string | string[]>, string][]
    ).map(([form, problem]) => ({ form, problem })),
  )('reports $problem', ({ form, problem }) => {
    expect(twilio.validateRequest(twilioRequest(form))).toContain(problem);
  });

  it('checks the path, the method, the credentials and the media type', () => {
    expect(
      twilio.validateRequest(
        twilioRequest(GOOD_FORM, { url: '/2010-04-01/Accounts/ACnope/Messages.json' }),
      ),
    ).toEqual(expect.arrayContaining(['path AccountSid: shorter than 34']));
    expect(twilio.validateRequest(twilioRequest(GOOD_FORM, { method: 'PUT' }))).toEqual([
      `no operation for PUT /2010-04-01/Accounts/${SID}/Messages.json`,
    ]);
    expect(
      twilio.validateRequest(
        twilioRequest(GOOD_FORM, {
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
        }),
      ),
    ).toEqual(['header Authorization: does not meet the operation security']);
    expect(
      twilio.validateRequest(
        twilioRequest(GOOD_FORM, {
          headers: { authorization: 'Basic eDp5', 'content-type': 'application/json' },
        }),
      ),
    ).toEqual([
      'header Content-Type: application/json is not one of application/x-www-form-urlencoded',
    ]);
    expect(
      twilio.validateRequest(
        twilioRequest(GOOD_FORM, { url: `/2010-04-01/Accounts/${SID}/Messages.json?x=1` }),
      ),
    ).toEqual(['query x: not a parameter of this operation']);
  });
});

describe('OpenAPI validator: SendGrid mail send', () => {
  it('accepts a documented mail', () => {
    expect(sendgrid.validateRequest(mailRequest(GOOD_MAIL))).toEqual([]);
  });

  it.each(
    (
      [
        [
          { ...GOOD_MAIL, trackingSettings: {} },
          'body.trackingSettings: not a property of this schema',
        ],
        [
          { ...GOOD_MAIL, tracking_settings: { click_tracking: { enable: 'false' } } },
          'body.tracking_settings.click_tracking.enable: expected boolean, got string',
        ],
        [
          { ...GOOD_MAIL, tracking_settings: { click_tracking: { enabled: false } } },
          'body.tracking_settings.click_tracking.enabled: not a property of this schema',
        ],
        [{ ...GOOD_MAIL, from: undefined }, 'body.from: required'],
        [{ ...GOOD_MAIL, from: { email: 'not an address' } }, 'body.from.email: not a valid email'],
        [
          { ...GOOD_MAIL, content: [{ type: 'text/plain', value: '' }] },
          'body.content[0].value: shorter than 1',
        ],
        [{ ...GOOD_MAIL, personalizations: [{}] }, 'body.personalizations[0].to: required'],
      ] as [unknown, string][]
    ).map(([mail, problem]) => ({ mail, problem })),
  )('reports $problem', ({ mail, problem }) => {
    expect(sendgrid.validateRequest(mailRequest(mail))).toContain(problem);
  });

  it('checks the bearer token and the body media type', () => {
    expect(
      sendgrid.validateRequest(
        mailRequest(GOOD_MAIL, {
          headers: { authorization: 'Basic eDp5', 'content-type': 'application/json' },
        }),
      ),
    ).toEqual(['header Authorization: does not meet the operation security']);
    expect(sendgrid.validateRequest(mailRequest(GOOD_MAIL, { body: '{' }))).toEqual([
      'body: not JSON',
    ]);
    expect(
      sendgrid.validateRequest(
        mailRequest(GOOD_MAIL, {
          headers: {
            authorization: 'Bearer k',
            'content-type': 'application/json',
            'content-encoding': 'br',
          },
        }),
      ),
    ).toEqual(['header Content-Encoding: "br" is not one of gzip']);
  });
});

describe('OpenAPI validator: its own limits', () => {
  it('throws on a schema keyword it does not implement rather than skipping it', () => {
    expect(() => twilio.validate('x', { oneOf: [{ type: 'string' }] })).toThrow(/oneOf/);
    expect(() => twilio.validate('x', { type: 'string', format: 'ipv6' })).toThrow(/ipv6/);
  });
});
