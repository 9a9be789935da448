import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { toolEnv } from '../../containers/runner/src/components/postgres.js';
import { PostgresTlsSchema } from '../../core/config/schema.js';
import {
  describeTlsError,
  pgSslOption,
  postgresTlsFromEnv,
  RDS_CA_BUNDLE_PATH,
} from '../../core/readiness/postgres-tls.js';

describe('postgres.tls configuration', () => {
  it('defaults to verify-full with the RDS bundle', () => {
    expect(PostgresTlsSchema.parse({})).toEqual({ mode: 'verify-full', ca: 'rds' });
    expect(PostgresTlsSchema.parse({ caSecret: 'prod/pg-ca' })).toEqual({
      mode: 'verify-full',
      caSecret: 'prod/pg-ca',
    });
    expect(PostgresTlsSchema.parse({ mode: 'require' })).toEqual({ mode: 'require' });
  });

  it('refuses a CA with a mode that does not verify, both CA sources, a relative path and other modes', () => {
    const issues = (v: unknown) => PostgresTlsSchema.safeParse(v).error?.issues.map((i) => i.message) ?? [];
    expect(issues({ mode: 'require', ca: 'rds' })).toEqual([
      'is used by mode "verify-full" only; mode "require" does not verify the server\'s certificate',
    ]);
    expect(issues({ ca: 'rds', caSecret: 'x/ca' })).toEqual(['give either ca or caSecret, not both']);
    expect(issues({ ca: 'certs/ca.pem' })[0]).toMatch(/must be "rds" .* or the absolute path of a PEM file/);
    expect(issues({ ca: '/etc/../ca.pem' }).length).toBeGreaterThan(0);
    expect(issues({ mode: 'prefer' }).length).toBeGreaterThan(0);
  });

  it('the runner image downloads the RDS bundle to the path the task definition names', () => {
    const dockerfile = readFileSync('containers/runner/Dockerfile', 'utf8');
    expect(dockerfile).toContain(
      `curl -fsSL https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem -o ${RDS_CA_BUNDLE_PATH}`,
    );
  });
});

describe('runner TLS settings', () => {
  const connection = { host: 'db.internal', port: 5432, user: 'u', password: 'p', database: 'prefect' };

  it('gives libpq PGSSLMODE and, for verify-full only, PGSSLROOTCERT (an inherited one is dropped)', () => {
    process.env.PGSSLROOTCERT = '/inherited.pem';
    try {
      const verify = toolEnv({ ...connection, tls: { mode: 'verify-full', caFile: '/ca.pem' } }, 'x');
      expect(verify).toMatchObject({ PGSSLMODE: 'verify-full', PGSSLROOTCERT: '/ca.pem' });
      const require = toolEnv({ ...connection, tls: { mode: 'require' } }, 'x');
      expect(require.PGSSLMODE).toBe('require');
      expect(require.PGSSLROOTCERT).toBeUndefined();
      expect(toolEnv(connection, 'x').PGSSLMODE).toBe('disable');
    } finally {
      delete process.env.PGSSLROOTCERT;
    }
  });

  it('node-postgres: verify-full sets the CA, verification and the server name (not for an IP)', () => {
    const ca = 'containers/runner/Dockerfile'; // any readable file stands in for the bundle
    expect(pgSslOption({ mode: 'verify-full', caFile: ca }, 'db.internal')).toMatchObject({
      rejectUnauthorized: true,
      servername: 'db.internal',
      ca: expect.stringContaining('FROM'),
    });
    expect(pgSslOption({ mode: 'verify-full', caFile: ca }, '10.0.0.5')).not.toHaveProperty('servername');
    expect(pgSslOption({ mode: 'require' }, 'db')).toEqual({ rejectUnauthorized: false });
    expect(pgSslOption({ mode: 'disable' }, 'db')).toBe(false);
    expect(pgSslOption(undefined, 'db')).toBe(false);
  });

  it('reads PGSSLMODE / PGSSLROOTCERT / PG_TLS_CA_PEM, refusing what cannot work', () => {
    expect(postgresTlsFromEnv({})).toEqual({ mode: 'disable' });
    expect(postgresTlsFromEnv({ PGSSLMODE: 'require', PGSSLROOTCERT: '/x' })).toEqual({ mode: 'require' });
    expect(() => postgresTlsFromEnv({ PGSSLMODE: 'verify-ca' })).toThrow(/PGSSLMODE: must be one of/);
    expect(() => postgresTlsFromEnv({ PGSSLMODE: 'verify-full', PG_TLS_CA_PEM: 'hello' })).toThrow(
      /PG_TLS_CA_PEM: holds no PEM certificate/,
    );
    const pem = '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----';
    const fromPem = postgresTlsFromEnv({ PGSSLMODE: 'verify-full', PG_TLS_CA_PEM: pem });
    expect(readFileSync(fromPem.caFile ?? '', 'utf8')).toContain(pem);
  });

  it('names TLS failures and says which setting to look at', () => {
    const wrongCa = Object.assign(new Error('self-signed certificate in certificate chain'), {
      code: 'SELF_SIGNED_CERT_IN_CHAIN',
    });
    expect(describeTlsError(wrongCa, { mode: 'verify-full', caFile: '/ca.pem' })).toMatch(
      /^TLS: the server's certificate was refused \(CA bundle \/ca\.pem\): SELF_SIGNED_CERT_IN_CHAIN/,
    );
    expect(
      describeTlsError(new Error('The server does not support SSL connections'), { mode: 'require' }),
    ).toMatch(/does not accept TLS connections, and postgres.tls.mode is require/);
    expect(
      describeTlsError(
        Object.assign(new Error('password authentication failed'), { code: '28P01' }),
        undefined,
      ),
    ).toBeUndefined();
  });
});
