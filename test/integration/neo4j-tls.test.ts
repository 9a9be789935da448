/**
 * Issue 15 item 4: TLS for every Bolt connection to the target's Neo4j, and no credentials in the
 * clear unless the configuration says so. Against a real Neo4j Community 5.26 with Bolt TLS required
 * (`dbms.ssl.policy.bolt.*`, `server.bolt.tls_level=REQUIRED`; harness/neo4j.ts `tls`), its CA and
 * server certificate generated here with openssl. The certificate names `localhost` only, so the same
 * server answers a host-name mismatch when reached as 127.0.0.1. The runner's real entrypoint and the
 * Neo4jReady Lambda's step (Secrets Manager: moto) run against it.
 */

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateSecretCommand } from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localRunnerEnv, neo4jRunnerEnv, runRunner } from '../../cli/local/runner-process.js';
import { readGraph } from '../../containers/runner/src/components/neo4j-counts.js';
import { boltCypher } from '../../containers/runner/src/components/restore-neo4j.js';
import { manifestKey, resultKey } from '../../core/backup/layout.js';
import { Neo4jCountsResultSchema } from '../../core/backup/results.js';
import { createLogger } from '../../core/log.js';
import { waitForNeo4j } from '../../core/readiness/neo4j.js';
import { neo4jReadyStep } from '../../core/readiness/neo4j-ready.js';
import { getJson, putJson } from '../../core/s3/objects.js';
import {
  createVersionedBucket,
  type Neo4jServer,
  type S3Server,
  startNeo4j,
  startS3,
} from '../../harness/index.js';
import { generateTestCa } from '../../harness/postgres.js';
import { scaled } from '../../harness/time-scale.js';
import { sampleManifest } from '../helpers/manifest.js';

const Bucket = 'backups-neo4j-tls';
const target = 'infrahub-lab';
const logger = createLogger({}, { write: () => undefined });

describe('Bolt TLS against a real Neo4j that requires it', () => {
  let neo4j: Neo4jServer;
  let aws: S3Server;
  let dir: string;
  let wrongCa: string;

  beforeAll(async () => {
    [neo4j, aws] = await Promise.all([
      startNeo4j({ tls: { subjectAltNames: ['DNS:localhost'] } }),
      startS3(),
    ]);
    await createVersionedBucket(aws.client(), Bucket);
    dir = mkdtempSync(join(tmpdir(), 'neo4j-tls-test-'));
    wrongCa = generateTestCa(dir, 'wrong-ca').certFile;
    await neo4j.driver().executeQuery('UNWIND range(1, 5) AS i CREATE (:Device {i: i})-[:IN]->(:Site)');
  }, scaled(240_000));

  afterAll(async () => {
    await Promise.allSettled([neo4j?.stop(), aws?.stop()]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const port = () => neo4j.boltPort;
  const caFile = () => neo4j.tls?.caFile as string;
  // The first TLS handshakes of a fresh JVM are slow on a loaded machine: a generous bound.
  const login = () => ({ username: 'neo4j', password: neo4j.password, readyTimeoutSeconds: 60 });

  it('the harness server is TLS-only, its certificate naming localhost', () => {
    expect(neo4j.boltUrl).toBe(`bolt+s://localhost:${port()}`);
    expect(readFileSync(join(neo4j.home, 'conf', 'neo4j.conf'), 'utf8')).toMatch(
      /dbms\.ssl\.policy\.bolt\.enabled=true[\s\S]*server\.bolt\.tls_level=REQUIRED/,
    );
  });

  it(
    'verify-full with the right CA and a name the certificate lists: counts are read',
    async () => {
      const graph = await readGraph(
        {
          uri: `bolt+s://localhost:${port()}`,
          ...login(),
          tls: { mode: 'verify-full', caFile: caFile() },
        },
        ['neo4j', 'system'],
      );
      expect(graph.counts.neo4j).toEqual({ nodes: 10, relationships: 5 });
    },
    scaled(60_000),
  );

  it(
    'the routing scheme of Enterprise targets (neo4j+s) verifies the same way and reads the counts, also through the Cypher session of a restore',
    async () => {
      const endpoint = {
        uri: `neo4j+s://localhost:${port()}`,
        ...login(),
        tls: { mode: 'verify-full' as const, caFile: caFile() },
      };
      expect((await readGraph(endpoint, ['neo4j', 'system'])).counts.neo4j).toEqual({
        nodes: 10,
        relationships: 5,
      });
      const cypher = boltCypher(endpoint);
      try {
        expect(
          await cypher.run('system', 'SHOW DATABASES YIELD name WHERE name = $name RETURN name', {
            name: 'neo4j',
          }),
        ).toEqual([{ name: 'neo4j' }]);
      } finally {
        await cypher.close();
      }
      const wrong = (await readGraph({ ...endpoint, tls: { mode: 'verify-full', caFile: wrongCa } }, [
        'neo4j',
      ]).catch((e: unknown) => e)) as Error;
      expect(wrong.message).toMatch(/TLS: the server's certificate is not signed by a CA/);
    },
    scaled(90_000),
  );

  it(
    'verify-full with a wrong CA fails at once, saying the certificate is not signed by that CA',
    async () => {
      const started = Date.now();
      const err = (await readGraph(
        { uri: `bolt+s://localhost:${port()}`, ...login(), tls: { mode: 'verify-full', caFile: wrongCa } },
        ['neo4j'],
      ).catch((e: unknown) => e)) as Error;
      expect(err).toMatchObject({ name: 'DatabaseUnreachable' });
      expect(err.message).toMatch(
        new RegExp(
          `TLS: the server's certificate is not signed by a CA in the CA bundle ${wrongCa}.*neo4j\\.tls\\.ca`,
        ),
      );
      // Fatal, not retried until the bound.
      expect(Date.now() - started).toBeLessThan(4_000);
      expect(err.message).not.toContain(neo4j.password);
    },
    scaled(60_000),
  );

  it(
    'verify-full without a CA uses the system trust store, which does not hold the test CA',
    async () => {
      await expect(
        waitForNeo4j(
          { uri: `bolt+s://localhost:${port()}`, ...login(), tls: { mode: 'verify-full' } },
          ['neo4j'],
          { timeoutSeconds: 5 },
        ),
      ).rejects.toThrow(/not signed by a CA in the system trust store/);
    },
    scaled(60_000),
  );

  it(
    'verify-full fails when the host connected to is not the one the certificate names (127.0.0.1 vs localhost)',
    async () => {
      const err = (await readGraph(
        { uri: `bolt+s://127.0.0.1:${port()}`, ...login(), tls: { mode: 'verify-full', caFile: caFile() } },
        ['neo4j'],
      ).catch((e: unknown) => e)) as Error;
      expect(err).toMatchObject({ name: 'DatabaseUnreachable' });
      expect(err.message).toMatch(
        /TLS: the server's certificate does not name the host connected to \(ERR_TLS_CERT_ALTNAME_INVALID\)/,
      );
    },
    scaled(60_000),
  );

  it(
    'require encrypts without verifying: the same 127.0.0.1 connection reads the counts',
    async () => {
      const graph = await readGraph(
        { uri: `bolt+ssc://127.0.0.1:${port()}`, ...login(), tls: { mode: 'require' } },
        ['neo4j'],
      );
      expect(graph.counts.neo4j).toEqual({ nodes: 10, relationships: 5 });
    },
    scaled(60_000),
  );

  it(
    'disable against the TLS-required server fails, bounded, saying such a server does not answer unencrypted Bolt',
    async () => {
      const err = (await waitForNeo4j(
        { uri: `bolt://127.0.0.1:${port()}`, ...login(), tls: { mode: 'disable' } },
        ['neo4j'],
        { timeoutSeconds: 3, pollMs: 500 },
      ).catch((e: unknown) => e)) as Error;
      expect(err).toMatchObject({ name: 'DatabaseUnreachable' });
      expect(err.message).toMatch(
        // The server either never answers the unencrypted handshake or closes the connection (seen on a
        // loaded machine): both are named, with the cause.
        /(no answer within \d+ ms|Connection was closed by server).*a server with server\.bolt\.tls_level=REQUIRED does not answer unencrypted Bolt: neo4j\.tls\.mode is "disable"/s,
      );
    },
    scaled(60_000),
  );

  it('a URI and mode that disagree are refused before connecting', async () => {
    await expect(
      waitForNeo4j(
        { uri: `bolt://localhost:${port()}`, ...login(), tls: { mode: 'verify-full', caFile: caFile() } },
        ['neo4j'],
      ),
    ).rejects.toMatchObject({ name: 'ConfigError', message: expect.stringMatching(/use bolt\+s:\/\//) });
  });

  describe('the runner (real entrypoint)', () => {
    const env = (backupId: string, extra: Record<string, string> = {}) => ({
      ...localRunnerEnv(aws, { target, backupId, bucket: Bucket }),
      ...neo4jRunnerEnv(neo4j),
      ...extra,
    });

    it(
      'count-neo4j over bolt+s with NEO4J_TLS_CA (as the task definition sets it) writes the counts',
      async () => {
        const backupId = 'infrahub_backup_20261124_010000';
        const e = env(backupId);
        expect(e).toMatchObject({ NEO4J_URI: `bolt+s://localhost:${port()}`, NEO4J_TLS_MODE: 'verify-full' });
        const run = await runRunner('count-neo4j', e);
        expect(run.code, run.stderr).toBe(0);
        const result = await getJson(
          aws.client(),
          Bucket,
          resultKey(target, backupId, 'database-counts'),
          Neo4jCountsResultSchema,
        );
        expect(result?.counts.neo4j).toEqual({ nodes: 10, relationships: 5 });
      },
      scaled(120_000),
    );

    it(
      'count-neo4j with the CA as PEM text (NEO4J_TLS_CA_PEM, from neo4j.tls.caSecret)',
      async () => {
        const backupId = 'infrahub_backup_20261124_020000';
        const { NEO4J_TLS_CA: _file, ...e } = env(backupId, {
          NEO4J_TLS_CA_PEM: readFileSync(caFile(), 'utf8'),
        });
        const run = await runRunner('count-neo4j', e);
        expect(run.code, run.stderr).toBe(0);
      },
      scaled(120_000),
    );

    it(
      'count-neo4j with a wrong CA fails DatabaseUnreachable, naming the TLS problem',
      async () => {
        const run = await runRunner(
          'count-neo4j',
          env('infrahub_backup_20261124_030000', { NEO4J_TLS_CA: wrongCa, NEO4J_READY_TIMEOUT_SECONDS: '5' }),
        );
        expect(run.code).not.toBe(0);
        expect(run.stderr).toMatch(
          /DatabaseUnreachable.*TLS: the server's certificate is not signed by a CA/,
        );
      },
      scaled(120_000),
    );

    describe('refusals before any connection (a listener counts the connections it gets)', () => {
      let listener: Server;
      let connections = 0;
      let listenerPort = 0;
      beforeAll(async () => {
        listener = createServer((socket) => {
          connections += 1;
          socket.destroy();
        });
        await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
        listenerPort = (listener.address() as { port: number }).port;
      });
      afterAll(async () => {
        await new Promise<void>((resolve) => listener.close(() => resolve()));
      });

      it(
        'bolt:// without NEO4J_TLS_MODE (the default is verify-full) is refused, naming the setting',
        async () => {
          const e = env('infrahub_backup_20261124_040000', { NEO4J_URI: `bolt://127.0.0.1:${listenerPort}` });
          delete (e as Record<string, string>).NEO4J_TLS_MODE;
          delete (e as Record<string, string>).NEO4J_TLS_CA;
          const run = await runRunner('count-neo4j', e);
          expect(run.code).toBe(2);
          expect(run.stderr).toMatch(
            /RunnerConfigError[\s\S]*NEO4J_URI: bolt:\/\/ is unencrypted Bolt \(the Neo4j credentials would travel in the clear\), and NEO4J_TLS_MODE is unset \("verify-full", the default of neo4j\.tls\.mode\): use bolt\+s:\/\/, or set NEO4J_TLS_MODE=disable/,
          );
          expect(run.stderr).not.toContain(neo4j.password);
          expect(connections).toBe(0);
        },
        scaled(60_000),
      );

      it.each(['restore-neo4j', 'validate-neo4j'] as const)(
        '%s (Enterprise) refuses bolt:// without NEO4J_TLS_MODE=disable before connecting, like count-neo4j',
        async (step) => {
          const backupId =
            step === 'restore-neo4j' ? 'infrahub_backup_20261124_060000' : 'infrahub_backup_20261124_070000';
          // A complete backup to restore (the step reads its manifest first).
          await putJson(
            aws.client(),
            Bucket,
            manifestKey(target, backupId),
            sampleManifest(target, backupId),
          );
          const e = {
            ...env(backupId, { NEO4J_URI: `bolt://127.0.0.1:${listenerPort}` }),
            RESTORE_ID: 'restore_20261124_060000_tls',
            NEO4J_EDITION: 'enterprise',
          };
          delete (e as Record<string, string>).NEO4J_TLS_MODE;
          delete (e as Record<string, string>).NEO4J_TLS_CA;
          const run = await runRunner(step, e);
          expect(run.code, run.stderr).toBe(2);
          expect(run.stderr).toMatch(/RunnerConfigError[\s\S]*NEO4J_URI: bolt:\/\/ is unencrypted Bolt/);
          expect(run.stderr).not.toContain(neo4j.password);
          expect(connections).toBe(0);
        },
        60_000,
      );

      it(
        'bolt:// with NEO4J_TLS_MODE=require is refused too',
        async () => {
          const e = env('infrahub_backup_20261124_050000', {
            NEO4J_URI: `bolt://127.0.0.1:${listenerPort}`,
            NEO4J_TLS_MODE: 'require',
          });
          delete (e as Record<string, string>).NEO4J_TLS_CA;
          const run = await runRunner('count-neo4j', e);
          expect(run.code).toBe(2);
          expect(run.stderr).toMatch(
            /NEO4J_URI: bolt:\/\/ is unencrypted Bolt.*NEO4J_TLS_MODE is "require": use bolt\+ssc:\/\//,
          );
          expect(connections).toBe(0);
        },
        scaled(60_000),
      );
    });
  });

  describe('the Neo4jReady Lambda step', () => {
    beforeAll(async () => {
      const secrets = aws.secretsManager();
      await secrets.send(
        new CreateSecretCommand({
          Name: 'lab/neo4j',
          SecretString: JSON.stringify({ username: 'neo4j', password: neo4j.password }),
        }),
      );
      await secrets.send(
        new CreateSecretCommand({ Name: 'lab/neo4j-ca', SecretString: readFileSync(caFile(), 'utf8') }),
      );
    });
    const event = (tls?: unknown) => ({
      target,
      host: 'localhost',
      boltPort: port(),
      credentialsSecret: 'lab/neo4j',
      databases: 'neo4j',
      ...(tls ? { tls } : {}),
    });

    it(
      'verify-full with the CA from caSecret: ready',
      async () => {
        const ready = await neo4jReadyStep(event({ mode: 'verify-full', caSecret: 'lab/neo4j-ca' }), {
          secrets: aws.secretsManager(),
          logger,
          maxWaitSeconds: 30,
        });
        expect(ready.statuses).toEqual({ neo4j: 'online', system: 'online' });
      },
      scaled(60_000),
    );

    it(
      'no tls in the event is verify-full against the system store: refused at once (bolt+s, not plain)',
      async () => {
        const err = (await neo4jReadyStep(event(), {
          secrets: aws.secretsManager(),
          logger,
          maxWaitSeconds: 30,
        }).catch((e: unknown) => e)) as Error;
        expect(err).toMatchObject({ name: 'DatabaseUnreachable' });
        expect(err.message).toMatch(
          new RegExp(`at bolt\\+s://localhost:${port()} .*not signed by a CA in the system trust store`),
        );
      },
      scaled(60_000),
    );

    it('a ca path (which exists only in the runner image) is refused, naming caSecret', async () => {
      await expect(
        neo4jReadyStep(event({ mode: 'verify-full', ca: caFile() }), {
          secrets: aws.secretsManager(),
          logger,
          maxWaitSeconds: 30,
        }),
      ).rejects.toMatchObject({
        name: 'ConfigError',
        message: expect.stringMatching(/neo4j\.tls\.caSecret/),
      });
    });
  });
});
