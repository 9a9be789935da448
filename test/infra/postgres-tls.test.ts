/**
 * Issue 13 item 3 on the synthesized task definitions: every target's runner carries its
 * postgres.tls as libpq's variables (PGSSLMODE, PGSSLROOTCERT) or, for a CA bundle in Secrets
 * Manager, the ECS secret PG_TLS_CA_PEM; the default verifies against the Amazon RDS bundle.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { type SynthesizedBackup, synthesizeBackup } from '../../cli/local/synth.js';
import { loadDeploymentConfigFile, parseDeploymentConfig } from '../../core/config/load.js';
import { RDS_CA_BUNDLE_PATH } from '../../core/readiness/postgres-tls.js';
import { scaled } from '../../harness/time-scale.js';

describe('synthesized task definitions: TLS to PostgreSQL', () => {
  let synthesized: SynthesizedBackup;
  const runner = (target: string) =>
    [...synthesized.taskDefinitions.values()].find((d) => d.environment.TARGET === target);

  beforeAll(() => {
    const raw = JSON.parse(JSON.stringify(loadDeploymentConfigFile('config/example.json')));
    const [prod, lab] = raw.targets;
    delete prod.postgres.tls; // the default
    lab.postgres.tls = { caSecret: 'infrahub-lab/prefect-postgres-ca' };
    const extra = (name: string, tls: unknown) => ({
      ...JSON.parse(JSON.stringify(prod)),
      name,
      postgres: { ...prod.postgres, tls },
    });
    raw.targets.push(
      extra('infrahub-own-ca', { mode: 'verify-full', ca: '/etc/ssl/certs/prefect-ca.pem' }),
      extra('infrahub-require', { mode: 'require' }),
      extra('infrahub-plain', { mode: 'disable' }),
    );
    synthesized = synthesizeBackup(parseDeploymentConfig(raw, 'test config'));
  }, scaled(180_000));

  it('defaults to verify-full with the RDS bundle the image downloads', () => {
    expect(runner('infrahub-prod')?.environment).toMatchObject({
      PGSSLMODE: 'verify-full',
      PGSSLROOTCERT: RDS_CA_BUNDLE_PATH,
    });
    expect(runner('infrahub-prod')?.secrets.PG_TLS_CA_PEM).toBeUndefined();
  });

  it('a CA bundle in Secrets Manager reaches the runner as the ECS secret PG_TLS_CA_PEM (whole value)', () => {
    const lab = runner('infrahub-lab');
    expect(lab?.environment.PGSSLMODE).toBe('verify-full');
    expect(lab?.environment.PGSSLROOTCERT).toBeUndefined();
    expect(lab?.secrets.PG_TLS_CA_PEM?.secretId).toContain('infrahub-lab/prefect-postgres-ca');
    expect(lab?.secrets.PG_TLS_CA_PEM?.jsonKey).toBeUndefined();
  });

  it('a CA file in the image, require and disable', () => {
    expect(runner('infrahub-own-ca')?.environment).toMatchObject({
      PGSSLMODE: 'verify-full',
      PGSSLROOTCERT: '/etc/ssl/certs/prefect-ca.pem',
    });
    for (const [target, mode] of [
      ['infrahub-require', 'require'],
      ['infrahub-plain', 'disable'],
    ] as const) {
      expect(runner(target)?.environment.PGSSLMODE).toBe(mode);
      expect(runner(target)?.environment.PGSSLROOTCERT).toBeUndefined();
    }
  });

  it("the example's verify-full targets with the RDS bundle name their RDS endpoint, the name in RDS's certificate", () => {
    // verify-full checks the host against the certificate: a private alias of the endpoint fails.
    const example = loadDeploymentConfigFile('config/example.json');
    const rdsVerified = example.targets.filter(
      (t) => t.postgres.tls.mode === 'verify-full' && 'ca' in t.postgres.tls && t.postgres.tls.ca === 'rds',
    );
    expect(rdsVerified.length).toBeGreaterThan(0);
    for (const t of rdsVerified)
      expect(t.postgres.host, t.name).toMatch(
        /^[a-z][a-z0-9-]*\.[a-z0-9]{12}\.[a-z]{2}(-[a-z]+)+-\d\.rds\.amazonaws\.com$/,
      );
    // The synthesized runner connects to that name.
    expect(runner('infrahub-prod')?.environment.PGHOST).toBe(
      'prefect.abcdefghijkl.eu-west-1.rds.amazonaws.com',
    );
  });

  it('drill task definitions carry no TLS settings: their PostgreSQL is the disposable one on loopback', () => {
    const drills = [...synthesized.taskDefinitions.values()].filter((d) => !d.environment.TARGET);
    expect(drills.length).toBeGreaterThan(0);
    for (const d of drills) expect(d.environment.PGSSLMODE).toBeUndefined();
  });
});
