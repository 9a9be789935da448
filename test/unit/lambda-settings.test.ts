/**
 * The Lambdas' one configuration channel (core/config/bundled.ts): the state machine sends run-time
 * values only; each handler adds its settings from the bundled deployment configuration. An event in
 * the former shape, with the settings in it, is refused, so a second source cannot creep back.
 */
import { describe, expect, it } from 'vitest';
import { loadDeploymentConfigFile, parseDeploymentConfig } from '../../core/config/load.js';
import { stepEvents } from '../../functions/steps.js';

const { Preflight: preflightEvent, Neo4jReady: neo4jReadyEvent, Manifest: manifestEvent } = stepEvents;

const example = loadDeploymentConfigFile('config/example.json');
const raw = structuredClone(example) as unknown as {
  preflight: Record<string, number>;
  retention: Record<string, number>;
  targets: Array<{ name: string; infrahub: { address: string }; neo4j: { boltPort: number } }>;
};
raw.preflight = { maxWaitSeconds: 120, pollIntervalSeconds: 10, staleTaskHours: 2, maxTaskPages: 7 };
raw.retention.daily = 3;
const labRaw = raw.targets[1] as (typeof raw.targets)[number];
labRaw.infrahub.address = 'http://127.0.0.1:18000';
labRaw.neo4j.boltPort = 17687;
const config = parseDeploymentConfig(raw, 'settings test');
const backupId = 'infrahub_backup_20261121_020000';

describe('Lambda settings come from the bundled configuration', () => {
  it('preflight: the target Infrahub API and the gate bounds are the configuration ones', () => {
    expect(preflightEvent({ target: 'infrahub-lab', backupId, force: false, wait: null }, config)).toEqual({
      target: 'infrahub-lab',
      backupId,
      force: false,
      wait: null,
      infrahub: { address: 'http://127.0.0.1:18000', tokenSecret: 'infrahub-lab/api-token' },
      maxWaitSeconds: 120,
      pollIntervalSeconds: 10,
      staleTaskHours: 2,
      maxTaskPages: 7,
    });
  });

  it('neo4j-ready: the address, credentials secret, databases and Bolt TLS are the configuration ones', () => {
    const lab = config.targets[1];
    expect(neo4jReadyEvent({ target: 'infrahub-lab' }, config)).toEqual({
      target: 'infrahub-lab',
      host: lab?.neo4j.host,
      boltPort: 17687,
      credentialsSecret: lab?.neo4j.credentialsSecret,
      databases: lab?.neo4j.databases.join(','),
      tls: lab?.neo4j.tls,
    });
  });

  it('manifest: the retention policy is the configuration one', () => {
    const event = manifestEvent({ target: 'infrahub-lab', backupId, components: ['database'] }, config);
    expect(event.retention).toEqual(config.retention);
    expect(event.retention?.daily).toBe(3);
  });

  it('refuses settings in the event: the state machine sends none', () => {
    expect(() =>
      preflightEvent(
        { target: 'infrahub-lab', backupId, infrahub: { address: 'http://x', tokenSecret: 's' } },
        config,
      ),
    ).toThrowError(/preflight event.*infrahub/s);
    expect(() =>
      preflightEvent({ target: 'infrahub-lab', backupId, maxWaitSeconds: 5 }, config),
    ).toThrowError(/maxWaitSeconds/);
    expect(() => neo4jReadyEvent({ target: 'infrahub-lab', host: 'elsewhere' }, config)).toThrowError(
      /Neo4j readiness event.*host/s,
    );
    expect(() =>
      manifestEvent({ target: 'infrahub-lab', backupId, components: ['database'], retention: {} }, config),
    ).toThrowError(/manifest event.*retention/s);
  });

  it('refuses a target the configuration does not name, naming the configured ones', () => {
    expect(() => preflightEvent({ target: 'infrahub-gone', backupId }, config)).toThrowError(
      /preflight event.*target: "infrahub-gone" is not configured \(known: infrahub-prod, infrahub-lab\)/s,
    );
    expect(() => neo4jReadyEvent({ target: 'infrahub-gone' }, config)).toThrowError(
      /Neo4j readiness event.*target: "infrahub-gone" is not configured/s,
    );
  });
});
