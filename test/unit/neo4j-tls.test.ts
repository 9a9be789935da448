/**
 * Issue 15 item 4: the one place that turns a Bolt connection into driver settings
 * (core/readiness/neo4j-tls.ts), and the runner's refusals from its environment.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  boltDriverSettings,
  boltUri,
  caPemFile,
  describeBoltTlsError,
  neo4jTlsFromEnv,
  openBoltDriver,
} from '../../core/readiness/neo4j-tls.js';

const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----';

describe('boltDriverSettings: URI scheme and neo4j.tls to neo4j-driver options', () => {
  it('maps each mode to the plain scheme plus explicit encryption and trust', () => {
    expect(
      boltDriverSettings({
        uri: 'bolt+s://db.internal:7687',
        tls: { mode: 'verify-full', caFile: '/ca.pem' },
      }),
    ).toEqual({
      uri: 'bolt://db.internal:7687',
      config: {
        encrypted: true,
        trust: 'TRUST_CUSTOM_CA_SIGNED_CERTIFICATES',
        trustedCertificates: ['/ca.pem'],
      },
      mode: 'verify-full',
    });
    expect(boltDriverSettings({ uri: 'neo4j+s://db.internal:7687', tls: { mode: 'verify-full' } })).toEqual({
      uri: 'neo4j://db.internal:7687',
      config: { encrypted: true, trust: 'TRUST_SYSTEM_CA_SIGNED_CERTIFICATES' },
      mode: 'verify-full',
    });
    expect(boltDriverSettings({ uri: 'bolt+ssc://db.internal:7687', tls: { mode: 'require' } })).toEqual({
      uri: 'bolt://db.internal:7687',
      config: { encrypted: true, trust: 'TRUST_ALL_CERTIFICATES' },
      mode: 'require',
    });
    expect(boltDriverSettings({ uri: 'bolt://db.internal:7687', tls: { mode: 'disable' } })).toEqual({
      uri: 'bolt://db.internal:7687',
      config: { encrypted: false },
      mode: 'disable',
    });
  });

  it('without tls: the scheme decides, and plain Bolt is allowed only to loopback', () => {
    expect(boltDriverSettings({ uri: 'bolt+s://db.internal:7687' }).mode).toBe('verify-full');
    expect(boltDriverSettings({ uri: 'bolt+ssc://db.internal:7687' }).mode).toBe('require');
    for (const uri of [
      'bolt://127.0.0.1:7687',
      'bolt://localhost:1',
      'bolt://[::1]:7687',
      'bolt://127.3.2.1:9',
    ])
      expect(boltDriverSettings({ uri }).config).toEqual({ encrypted: false });
    expect(() => boltDriverSettings({ uri: 'bolt://db.internal:7687' })).toThrow(
      /neo4j\.tls\.mode: refusing to send the Neo4j credentials unencrypted to db\.internal: plain bolt:\/\/ needs neo4j\.tls\.mode "disable" said explicitly/,
    );
    expect(() => boltDriverSettings({ uri: 'neo4j://10.0.0.5:7687' })).toThrow(/ConfigError|refusing/);
  });

  it('refuses a scheme that disagrees with the mode, a CA for another mode, and a URI that is not Bolt', () => {
    expect(() => boltDriverSettings({ uri: 'bolt://db:7687', tls: { mode: 'verify-full' } })).toThrow(
      /neo4j\.tls\.mode: is "verify-full" but the URI's scheme bolt:\/\/ means "disable"; use bolt\+s:\/\//,
    );
    expect(() => boltDriverSettings({ uri: 'bolt+s://db:7687', tls: { mode: 'disable' } })).toThrow(
      /use bolt:\/\//,
    );
    expect(() => boltDriverSettings({ uri: 'neo4j+ssc://db:7687', tls: { mode: 'verify-full' } })).toThrow(
      /use neo4j\+s:\/\//,
    );
    expect(() =>
      boltDriverSettings({ uri: 'bolt+ssc://db:7687', tls: { mode: 'require', caFile: '/ca.pem' } }),
    ).toThrow(/neo4j\.tls\.ca: is used by mode "verify-full" only/);
    expect(() => boltDriverSettings({ uri: 'http://db:7474', tls: { mode: 'disable' } })).toThrow(
      /must be a bolt/,
    );
  });

  it('openBoltDriver refuses before connecting, and does not let config override the TLS settings', async () => {
    expect(() =>
      openBoltDriver({ uri: 'bolt://db.internal:7687', username: 'neo4j', password: 'pw-123456789' }),
    ).toThrow(expect.objectContaining({ name: 'ConfigError' }));
    const driver = openBoltDriver(
      {
        uri: 'bolt+s://db.internal:7687',
        username: 'neo4j',
        password: 'pw-123456789',
        tls: { mode: 'verify-full' },
      },
      { encrypted: false, trust: 'TRUST_ALL_CERTIFICATES', connectionTimeout: 1000 },
    );
    try {
      expect(driver.isEncrypted()).toBe(true);
    } finally {
      await driver.close();
    }
  });

  it('boltUri puts the mode in the scheme (IPv6 in brackets)', () => {
    expect(boltUri('db', 7687, 'verify-full')).toBe('bolt+s://db:7687');
    expect(boltUri('db', 7687, 'require')).toBe('bolt+ssc://db:7687');
    expect(boltUri('db', 7687, 'disable')).toBe('bolt://db:7687');
    expect(boltUri('fd00::1', 7687, 'verify-full')).toBe('bolt+s://[fd00::1]:7687');
    // Routing (Enterprise: administration writes reach the system leader of a cluster).
    expect(boltUri('db', 7687, 'verify-full', true)).toBe('neo4j+s://db:7687');
    expect(boltUri('db', 7687, 'require', true)).toBe('neo4j+ssc://db:7687');
    expect(boltUri('db', 7687, 'disable', true)).toBe('neo4j://db:7687');
  });
});

describe('neo4jTlsFromEnv: the runner refuses before connecting', () => {
  it('a plain bolt:// URI without NEO4J_TLS_MODE=disable is refused, naming the setting', () => {
    expect(() => neo4jTlsFromEnv({}, 'bolt://db:7687')).toThrow(
      /NEO4J_URI: bolt:\/\/ is unencrypted Bolt \(the Neo4j credentials would travel in the clear\), and NEO4J_TLS_MODE is unset \("verify-full", the default of neo4j\.tls\.mode\): use bolt\+s:\/\/, or set NEO4J_TLS_MODE=disable/,
    );
    expect(() => neo4jTlsFromEnv({ NEO4J_TLS_MODE: 'require' }, 'bolt://db:7687')).toThrow(
      expect.objectContaining({
        name: 'RunnerConfigError',
        message: expect.stringMatching(/use bolt\+ssc:\/\//),
      }),
    );
    expect(neo4jTlsFromEnv({ NEO4J_TLS_MODE: 'disable' }, 'bolt://db:7687')).toEqual({ mode: 'disable' });
  });

  it('reads the mode and the CA (file or PEM text), refusing what cannot work', () => {
    expect(neo4jTlsFromEnv({}, 'bolt+s://db:7687')).toEqual({ mode: 'verify-full' });
    expect(neo4jTlsFromEnv({ NEO4J_TLS_MODE: 'require' }, 'bolt+ssc://db:7687')).toEqual({ mode: 'require' });
    expect(() => neo4jTlsFromEnv({ NEO4J_TLS_MODE: 'verify-ca' }, 'bolt+s://db:7687')).toThrow(
      /NEO4J_TLS_MODE: must be one of disable, require, verify-full/,
    );
    expect(() => neo4jTlsFromEnv({ NEO4J_TLS_MODE: 'disable' }, 'bolt+s://db:7687')).toThrow(
      /bolt\+s:\/\/ means neo4j\.tls\.mode "verify-full", but NEO4J_TLS_MODE is "disable": use bolt:\/\//,
    );
    expect(() =>
      neo4jTlsFromEnv({ NEO4J_TLS_MODE: 'require', NEO4J_TLS_CA: '/ca.pem' }, 'bolt+ssc://db:7687'),
    ).toThrow(/NEO4J_TLS_CA: a CA bundle is used by NEO4J_TLS_MODE=verify-full only/);
    expect(() =>
      neo4jTlsFromEnv({ NEO4J_TLS_CA: '/ca.pem', NEO4J_TLS_CA_PEM: PEM }, 'bolt+s://db:7687'),
    ).toThrow(/set one CA bundle, not both/);
    expect(() => neo4jTlsFromEnv({ NEO4J_TLS_CA: '/no/such/ca.pem' }, 'bolt+s://db:7687')).toThrow(
      /NEO4J_TLS_CA: the CA bundle \/no\/such\/ca\.pem does not exist in this runner .*neo4j\.tls\.caSecret/,
    );
    expect(() => neo4jTlsFromEnv({ NEO4J_TLS_CA_PEM: 'hello' }, 'bolt+s://db:7687')).toThrow(
      /NEO4J_TLS_CA_PEM: holds no PEM certificate/,
    );
    const fromPem = neo4jTlsFromEnv({ NEO4J_TLS_CA_PEM: PEM }, 'bolt+s://db:7687');
    expect(fromPem.mode).toBe('verify-full');
    expect(readFileSync(fromPem.caFile as string, 'utf8')).toBe(`${PEM}\n`);
    expect(caPemFile(PEM, 'x')).toBe(fromPem.caFile);
  });
});

describe('describeBoltTlsError', () => {
  const driverError = (socket: string) =>
    new Error(
      `Server certificate is not trusted. If you trust the database ... Socket responded with: ${socket}`,
    );
  it('names the CA, the host-name mismatch and the unanswered plain connection', () => {
    expect(
      describeBoltTlsError(driverError('UNABLE_TO_VERIFY_LEAF_SIGNATURE'), {
        mode: 'verify-full',
        caFile: '/ca.pem',
      }),
    ).toMatch(/not signed by a CA in the CA bundle \/ca\.pem \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\)/);
    expect(
      describeBoltTlsError(driverError('ERR_TLS_CERT_ALTNAME_INVALID'), { mode: 'verify-full' }),
    ).toMatch(/does not name the host connected to/);
    expect(describeBoltTlsError(new Error('no answer within 1000 ms'), { mode: 'disable' })).toMatch(
      /server\.bolt\.tls_level=REQUIRED/,
    );
    expect(
      describeBoltTlsError(new Error('Neo.ClientError.Security.Unauthorized'), { mode: 'verify-full' }),
    ).toBeUndefined();
  });
});
