/**
 * Issue 14: after a Community backup's DBMS stop and start, Neo4j opens its databases for a while and
 * a real Infrahub answers HTTP 503 "Database Service unavailable" meanwhile. The backup state
 * machine's WaitForNeo4j step (functions/neo4j-ready, the Lambda AWS runs in the VPC) waits over Bolt
 * until they are online; here against a real Neo4j and Secrets Manager (moto) on loopback.
 */
import { CreateSecretCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../core/log.js';
import { neo4jReadyStep } from '../../core/readiness/neo4j-ready.js';
import { type Neo4jServer, type S3Server, startNeo4j, startS3 } from '../../harness/index.js';
import { scaled } from '../../harness/time-scale.js';

const logger = createLogger({}, { write: () => undefined });

describe('WaitForNeo4j (functions/neo4j-ready) against a real Neo4j', () => {
  let neo4j: Neo4jServer;
  let aws: S3Server;
  let secrets: SecretsManagerClient;

  beforeAll(async () => {
    [neo4j, aws] = await Promise.all([startNeo4j(), startS3()]);
    secrets = aws.secretsManager();
    await secrets.send(
      new CreateSecretCommand({
        Name: 'lab/neo4j',
        SecretString: JSON.stringify({ username: 'neo4j', password: neo4j.password }),
      }),
    );
  }, scaled(240_000));

  afterAll(async () => {
    await neo4j?.startDbms().catch(() => undefined);
    await Promise.all([neo4j?.stop(), aws?.stop()]);
  });

  const event = () => ({
    target: 'infrahub-lab',
    host: '127.0.0.1',
    boltPort: neo4j.boltPort,
    credentialsSecret: 'lab/neo4j',
    databases: 'neo4j',
    // The harness's Neo4j speaks plain Bolt: said explicitly (the default is verify-full).
    tls: { mode: 'disable' as const },
  });

  it(
    'answers at once when the DBMS runs, with its databases online',
    async () => {
      const ready = await neo4jReadyStep(event(), { secrets, logger, maxWaitSeconds: 60 });
      expect(ready).toMatchObject({
        target: 'infrahub-lab',
        statuses: { neo4j: 'online', system: 'online' },
      });
    },
    scaled(90_000),
  );

  it(
    'fails, bounded and named, while the DBMS does not answer over Bolt',
    async () => {
      await neo4j.stopDbms();
      try {
        const started = Date.now();
        const err = (await neo4jReadyStep(event(), { secrets, logger, maxWaitSeconds: 3, pollMs: 500 }).catch(
          (e: unknown) => e,
        )) as Error;
        expect(Date.now() - started).toBeLessThan(20_000);
        expect(err).toMatchObject({ name: 'DatabaseUnreachable' });
        expect(err.message).toMatch(
          new RegExp(
            `the Neo4j DBMS of "infrahub-lab" was started again after its dump, but does not answer over Bolt at bolt://127\\.0\\.0\\.1:${neo4j.boltPort} with neo4j, system online \\(waited up to 3 s\\).*Infrahub answers HTTP 503`,
            's',
          ),
        );
        expect(err.message).not.toContain(neo4j.password);
      } finally {
        await neo4j.startDbms();
      }
    },
    scaled(180_000),
  );

  it(
    'waits while the DBMS starts, and answers once Bolt does',
    async () => {
      await neo4j.stopDbms();
      // The wait starts while nothing listens; the DBMS comes up after it (as ECS brings its task up).
      const waiting = neo4jReadyStep(event(), { secrets, logger, maxWaitSeconds: 150, pollMs: 500 });
      const starting = neo4j.startDbms();
      const ready = await waiting;
      await starting;
      expect(ready.statuses).toEqual({ neo4j: 'online', system: 'online' });
      expect(ready.waitedSeconds).toBeGreaterThan(0);
    },
    scaled(240_000),
  );

  it(
    'refuses a wrong password at once, naming it as a refused login',
    async () => {
      await secrets.send(
        new CreateSecretCommand({
          Name: 'lab/neo4j-wrong',
          SecretString: JSON.stringify({ username: 'neo4j', password: 'not-the-password-1234' }),
        }),
      );
      const attempt = neo4jReadyStep(
        { ...event(), credentialsSecret: 'lab/neo4j-wrong' },
        { secrets, logger, maxWaitSeconds: 60 },
      );
      await expect(attempt).rejects.toMatchObject({
        name: 'DatabaseUnreachable',
        message: expect.stringMatching(/login refused/),
      });
    },
    scaled(90_000),
  );
});
