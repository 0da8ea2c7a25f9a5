import { clientKey, INVALID_CLIENT } from '../../src/http/client-key';

describe('clientKey', () => {
  it('keeps an IPv4 address whole, with or without the port some proxies add', () => {
    expect(clientKey('198.51.100.7', 56)).toBe('198.51.100.7');
    expect(clientKey('198.51.100.7:51234', 56)).toBe('198.51.100.7');
  });

  it('counts an IPv6 address as its network, in every spelling of it', () => {
    const network = '2001:db8:1:200::/56';
    for (const address of [
      '2001:db8:1:200::1',
      '2001:db8:1:2ff:ffff:ffff:ffff:ffff',
      '2001:0DB8:0001:0234:0000:0000:0000:0001',
      '2001:db8:1:234:0:0:1.2.3.4',
      '2001:db8:1:2aa::9%eth0',
      '[2001:db8:1:201::1]:443',
      '[2001:db8:1:201::1]',
    ])
      expect(clientKey(address, 56)).toBe(network);
    expect(clientKey('2001:db8:1:300::1', 56)).toBe('2001:db8:1:300::/56');
  });

  it('takes the prefix length it is given, also inside a group', () => {
    const address = '2001:db8:abcd:1234:5678::1';
    expect(clientKey(address, 64)).toBe('2001:db8:abcd:1234::/64');
    expect(clientKey(address, 48)).toBe('2001:db8:abcd::/48');
    expect(clientKey(address, 36)).toBe('2001:db8:a000::/36');
    expect(clientKey(address, 32)).toBe('2001:db8::/32');
    expect(clientKey('::1', 56)).toBe('0:0:0:0::/56');
  });

  it('reads an IPv4-mapped IPv6 address as the IPv4 address it carries', () => {
    for (const address of ['::ffff:198.51.100.7', '::FFFF:C633:6407', '0:0:0:0:0:ffff:c633:6407'])
      expect(clientKey(address, 56)).toBe('198.51.100.7');
    // Only ::ffff:0:0/96 carries one; a neighbouring range is IPv6 like any other.
    expect(clientKey('::fffe:c633:6407', 56)).toBe('0:0:0:0::/56');
  });

  it('gives everything that is not an IP address the one invalid key', () => {
    for (const junk of [
      undefined,
      '',
      'unknown',
      'not-an-address',
      '198.51.100.7 ',
      '198.51.100.256',
      '01.2.3.4',
      '198.51.100.7:port',
      '2001:db8::1::2',
      `2001:db8::1%${'x'.repeat(200)}`,
      'x'.repeat(10_000),
    ])
      expect(clientKey(junk, 56)).toBe(INVALID_CLIENT);
  });
});
