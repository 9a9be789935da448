import { describe, expect, it } from 'vitest';
import {
  formatIp,
  INFRAHUB_NULL,
  mapIpForm,
  mapJsonStrings,
  parseIpForm,
  prefixPreserving,
  REDACTION_KEY_BYTES,
  valueRedactor,
} from '../../core/redaction/values.js';

const key = Buffer.alloc(REDACTION_KEY_BYTES, 7);
const otherKey = Buffer.alloc(REDACTION_KEY_BYTES, 8);
const PLACEHOLDER = /^redacted-[0-9a-f]{16}$/;

describe('valueRedactor: strings', () => {
  it('replaces a string with redacted-<16 hex>, the same for equal values, different for different ones', () => {
    const r = valueRedactor(key);
    const a = r.string('device-01');
    expect(a).toMatch(PLACEHOLDER);
    expect(r.string('device-01')).toBe(a);
    expect(r.string('device-02')).not.toBe(a);
    expect(r.string('Device-01')).not.toBe(a);
  });

  it('depends on the key: another export gives other placeholders (nothing to match across exports)', () => {
    expect(valueRedactor(key).string('s3cr3t-passw0rd')).not.toBe(
      valueRedactor(otherKey).string('s3cr3t-passw0rd'),
    );
  });

  it('gives distinct placeholders to 100 000 distinct values (uniqueness constraints survive)', () => {
    const r = valueRedactor(key);
    const seen = new Set<string>();
    for (let i = 0; i < 100_000; i += 1) seen.add(r.string(`name-${i}`));
    expect(seen.size).toBe(100_000);
  });

  it('refuses a key shorter than 32 bytes', () => {
    expect(() => valueRedactor(Buffer.alloc(16))).toThrow(/at least 32 bytes, not 16/);
  });

  it("keeps the schema's own strings, empty strings, Infrahub's NULL marker and timestamps", () => {
    const r = valueRedactor(key, new Set(['active', 'TestingDevice']));
    for (const kept of [
      'active',
      'TestingDevice',
      '',
      INFRAHUB_NULL,
      '2026-11-21',
      '2026-11-21T02:00:00Z',
      '2026-11-21T02:00:00.123456+00:00',
      '2026-11-21 02:00:00',
    ])
      expect(r.string(kept), kept).toBe(kept);
    expect(r.string('Active')).toMatch(PLACEHOLDER);
    expect(r.string('2026-13-45')).toMatch(PLACEHOLDER);
    expect(r.stats).toMatchObject({ keptSchema: 2, keptEmpty: 2, keptTimestamp: 4, replaced: 2 });
  });

  it('replaces a URL after its scheme: host, path, query and credentials go', () => {
    const r = valueRedactor(key);
    const url = r.string('https://deploy:hunter2@git.corp.example/infra/configs.git?token=abc');
    expect(url).toMatch(/^https:\/\/redacted-[0-9a-f]{16}\.invalid$/);
    expect(url).not.toMatch(/hunter2|corp|configs|abc/);
  });

  it('keeps a MAC address a MAC address, separator and case kept, distinct ones distinct', () => {
    const r = valueRedactor(key);
    const upper = r.string('00:1A:2B:3C:4D:5E');
    expect(upper).toMatch(/^([0-9A-F]{2}:){5}[0-9A-F]{2}$/);
    expect(upper).not.toBe('00:1A:2B:3C:4D:5E');
    expect(r.string('00-1a-2b-3c-4d-5e')).toMatch(/^([0-9a-f]{2}-){5}[0-9a-f]{2}$/);
    expect(r.string('00:1A:2B:3C:4D:5E:6F:70')).toMatch(/^([0-9A-F]{2}:){7}[0-9A-F]{2}$/);
    const macs = new Set<string>();
    for (let i = 0; i < 5000; i += 1)
      macs.add(
        r.string(
          `02:00:00:00:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`,
        ),
      );
    expect(macs.size).toBe(5000);
  });

  it('redacts the strings inside JSON, keys not declared in the schema among them; keeps numbers, booleans, null and layout', () => {
    // "on", "x" and "tags" are schema strings (kept); "owner" and "vlan" are not.
    const r = valueRedactor(key, new Set(['on', 'x', 'tags']));
    const name = r.string('device-01');
    expect(r.string('["device-01"]')).toBe(`[${JSON.stringify(name)}]`);
    const json =
      '{"owner": "alice", "vlan": 12345678901234567890, "on": true, "x": null, "tags": ["a\\"b", "device-01"]}';
    const out = r.string(json);
    const k = (text: string) => JSON.stringify(r.string(text));
    expect(out).toBe(
      `{${k('owner')}: ${k('alice')}, ${k('vlan')}: 12345678901234567890, "on": true, "x": null, "tags": [${k('a"b')}, ${JSON.stringify(name)}]}`,
    );
    expect(JSON.parse(out)).toMatchObject({ on: true, x: null });
    // Not JSON after all: a plain placeholder.
    expect(r.string('[not json')).toMatch(PLACEHOLDER);
  });

  it('redacts JSON object keys as values are: a hostname key goes, equal keys stay equal (issue 18 review of items 4-5, finding 4)', () => {
    const r = valueRedactor(key, new Set(['name']));
    const out = r.string(
      '{"acme-corp.example.com": {"ssh_password": "hunter2", "name": "db"}, "10.1.2.3": {"ssh_password": "x"}}',
    );
    expect(out).not.toMatch(/acme|example|ssh_password|hunter2|10\.1\.2\.3/);
    const parsed = JSON.parse(out) as Record<string, Record<string, string>>;
    const host = r.string('acme-corp.example.com');
    expect(host).toMatch(PLACEHOLDER);
    const inner = parsed[host] as Record<string, string>;
    // The same key in two objects: the same placeholder; a schema string ("name") kept.
    expect(Object.keys(inner)).toEqual([r.string('ssh_password'), 'name']);
    expect(inner.name).toBe(r.string('db'));
    const address = r.string('10.1.2.3');
    expect(parseIpForm(address)?.version).toBe(4);
    expect(Object.keys(parsed[address] as object)).toEqual([r.string('ssh_password')]);
    expect(Object.keys(parsed)).toHaveLength(2);
  });

  it('keeps booleans, numbers and other non-string values; maps lists element by element', () => {
    const r = valueRedactor(key);
    expect(r.value(true)).toBe(true);
    expect(r.value(42)).toBe(42);
    expect(r.value(null)).toBe(null);
    const integer = { low: 1, high: 0 };
    expect(r.value(integer)).toBe(integer);
    expect(r.value(['a-secret', 7])).toEqual([r.string('a-secret'), 7]);
  });
});

describe('valueRedactor: IP addresses', () => {
  const r = valueRedactor(key);

  it('keeps the version and prefix length, and the form (address, interface, network)', () => {
    expect(r.string('10.1.2.3')).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    expect(r.string('10.1.2.3/24')).toMatch(/^\d+\.\d+\.\d+\.\d+\/24$/);
    expect(r.string('2001:db8::1/64')).toMatch(/^[0-9a-f:]+\/64$/);
    expect(r.string('10.1.2.3')).not.toBe('10.1.2.3');
    const net = parseIpForm(r.string('10.1.2.0/24'));
    expect(net).toMatchObject({ version: 4, prefix: 24, network: true });
    const net6 = parseIpForm(r.string('2001:db8:1::/48'));
    expect(net6).toMatchObject({ version: 6, prefix: 48, network: true });
  });

  it('keeps a host inside its network and a network inside its parent (prefix-preserving)', () => {
    const parent = r.string('10.0.0.0/8');
    const network = r.string('10.1.2.0/24');
    const host = r.string('10.1.2.77/24');
    const top = (s: string, bits: number) => {
      const f = parseIpForm(s);
      if (!f) throw new Error(s);
      return [...f.bytes]
        .map((b) => b.toString(2).padStart(8, '0'))
        .join('')
        .slice(0, bits);
    };
    expect(top(host, 24)).toBe(top(network, 24));
    expect(top(network, 8)).toBe(top(parent, 8));
  });

  it('maps distinct addresses to distinct ones, for every host of a /22, never onto the network address', () => {
    const seen = new Set<string>();
    for (let i = 1; i < 1024; i += 1) {
      const out = r.string(`192.168.${(i >> 8) + 4}.${i & 0xff}/22`);
      seen.add(out);
      expect(parseIpForm(out)?.network, out).toBe(false);
    }
    expect(seen.size).toBe(1023);
  });

  it('swaps the one host the permutation sends to the zero host part with the image of zero', () => {
    // A PRF that never flips: the identity on addresses.
    const identity = () => 0;
    const host = parseIpForm('10.0.0.0/24');
    expect(host?.network).toBe(true);
    // A PRF that flips the last bit only: 10.0.0.1/31-style collisions show the swap.
    const flipLast = (prefix: string) => (prefix.length === 31 ? 1 : 0);
    const form = parseIpForm('10.0.0.1/24');
    if (!form) throw new Error('parse');
    expect(formatIp(mapIpForm(form, identity), 4, 24)).toBe('10.0.0.1/24');
    // 10.0.0.1 -> 10.0.0.0 under flipLast: that would be the network address, so it takes zero's image.
    expect(formatIp(mapIpForm(form, flipLast), 4, 24)).toBe('10.0.0.1/24');
    const zero = parseIpForm('10.0.0.0/24');
    if (!zero) throw new Error('parse');
    expect(formatIp(mapIpForm(zero, flipLast), 4, 24)).toBe('10.0.0.0/24');
  });

  it('writes the vertex of an IPHost or IPNetwork attribute with its binary_address recomputed', () => {
    const host = r.ipVertex('10.1.2.3/24', 'host');
    expect(host.value).toBe(r.string('10.1.2.3/24'));
    const f = parseIpForm(host.value);
    expect(host.binaryAddress).toBe(
      [...(f?.bytes ?? [])].map((b) => b.toString(2).padStart(8, '0')).join(''),
    );
    expect(host.binaryAddress).toHaveLength(32);
    const net = r.ipVertex('2001:db8::/32', 'network');
    expect(net.binaryAddress).toHaveLength(128);
    expect(net.binaryAddress.slice(32)).toBe('0'.repeat(96));
    const odd = r.ipVertex('not-an-address', 'host');
    expect(odd).toEqual({ value: r.string('not-an-address'), binaryAddress: '0'.repeat(32) });
  });
});

describe('IP forms', () => {
  it.each([
    ['10.0.0.1', { version: 4 }],
    ['10.0.0.0/8', { version: 4, prefix: 8, network: true }],
    ['::', { version: 6 }],
    ['::ffff:1.2.3.4', { version: 6 }],
    ['2001:db8::1/128', { version: 6, prefix: 128, network: true }],
    ['1:2:3:4:5:6:7::', { version: 6 }],
  ])('parses %s', (text, expected) => {
    expect(parseIpForm(text)).toMatchObject(expected);
  });

  it.each([
    '010.0.0.1',
    '256.0.0.1',
    '1.2.3',
    '10.0.0.1/33',
    '1::2::3',
    ':1',
    '1:2:3:4:5:6:7:8:9',
    'fe80::1%eth0',
    'device',
  ])('refuses %s', (text) => {
    expect(parseIpForm(text)).toBeUndefined();
  });

  it.each([
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['2001:db8:0:1:0:0:0:1', '2001:db8:0:1::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['::ffff:1.2.3.4', '::ffff:102:304'],
  ])('writes %s as Python does: %s', (text, expected) => {
    const f = parseIpForm(text);
    if (!f) throw new Error(text);
    expect(formatIp(f.bytes, 6)).toBe(expected);
  });

  it('prefixPreserving is a bijection that keeps shared prefixes exactly', () => {
    const prf = (prefix: string) => prefix.length * 7 + prefix.split('1').length;
    const outs = new Set<number>();
    for (let i = 0; i < 256; i += 1) outs.add(prefixPreserving(Uint8Array.of(i), prf)[0] as number);
    expect(outs.size).toBe(256);
    const a = prefixPreserving(Uint8Array.of(0b10110000), prf)[0] as number;
    const b = prefixPreserving(Uint8Array.of(0b10111111), prf)[0] as number;
    expect(a >> 4).toBe(b >> 4);
    expect((a >> 3) & 1).not.toBe((b >> 3) & 1);
  });
});

describe('mapJsonStrings', () => {
  it('replaces string values, keys only with mapKey, and copies everything else byte for byte', () => {
    expect(mapJsonStrings('{ "a" : "x", "b":["y",1.50,{"c":"z"}] }', (s) => s.toUpperCase())).toBe(
      '{ "a" : "X", "b":["Y",1.50,{"c":"Z"}] }',
    );
    expect(mapJsonStrings('["\\u0041\\n"]', (s) => `${s.length}`)).toBe('["2"]');
    expect(
      mapJsonStrings(
        '{ "a" : "x", "b":{"a\\u0041":1} }',
        (s) => s,
        (k) => `<${k}>`,
      ),
    ).toBe('{ "<a>" : "x", "<b>":{"<aA>":1} }');
  });
});
