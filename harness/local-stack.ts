/**
 * Whole local deployments for the state-machine tests: the harness's PostgreSQL, Neo4j Community,
 * moto and fake Infrahub API started together, wired into one local target (cli/local/harness-target),
 * provisioned on moto (versioned bucket, notice topic, the target's secrets) and the app synthesized
 * from its configuration, ready for runBackupLocally / runRestoreLocally / runDrillLocally. Also the
 * configuration of a target that is never reached, for tests that need moto alone.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { LocalAws, LocalBackupOptions, LocalExecution } from '../cli/local/backup.js';
import {
  type LocalTarget,
  localDeploymentConfig,
  localRuntime,
  provisionLocalAws,
} from '../cli/local/harness-target.js';
import { type SynthesizedBackup, synthesizeBackup } from '../cli/local/synth.js';
import { parseDeploymentConfig } from '../core/config/load.js';
import type { DeploymentConfig, DeploymentConfigInput } from '../core/config/schema.js';
import { type FakeInfrahub, startFakeInfrahub } from './fake-infrahub-api.js';
import { type Neo4jServer, startNeo4j } from './neo4j.js';
import { type PostgresServer, startPostgres } from './postgres.js';
import { harnessTempDir, removeHarnessDir } from './processes.js';
import { type S3Server, startS3 } from './s3.js';
import { seedGraph, seedPrefect } from './sample-data.js';

/** The names of the states an execution entered, in the order entered. */
export function enteredStates(run: LocalExecution): string[] {
  return run.events.flatMap((e) => (e.type === 'StateEntered' ? [(e.state as { name: string }).name] : []));
}

export interface LocalStackOptions {
  /** The backup bucket created (versioned) on moto. */
  bucket: string;
  /** The fake Infrahub API's options (default: no tasks, version 1.5.0). */
  infrahub?: Parameters<typeof startFakeInfrahub>[0];
  /** Flow runs seeded into the Prefect database; none (and no Prefect schema) when omitted. */
  flowRuns?: number;
  /** Devices seeded into the graph; none when omitted. */
  devices?: number;
  /** Files of the target's artifact storage: path relative to the storage folder → UTF-8 content. */
  storageFiles?: Record<string, string>;
  /** Prefix of the storage folder's name under the system temporary folder (default `stack-storage-`). */
  storagePrefix?: string;
  /** The preflight gate's settings in the configuration (default: the schema's). */
  preflight?: DeploymentConfigInput['preflight'];
  /** Changes the local configuration before the app is synthesized from it (e.g. adds quiescing). */
  configure?: (config: DeploymentConfig) => DeploymentConfig;
  /** Start of the executions' clock, in ms since the epoch (default 2026-11-21T02:00:00Z). */
  clockStart?: number;
  /** The uuid of `infrahub-lab`'s seeded Root node: its Infrahub deployment id (default "root"). */
  rootUuid?: string;
  /**
   * More targets after `infrahub-lab`, each with a PostgreSQL, a Neo4j and an artifact storage
   * folder of its own (a refresh restores one target's backup into another), seeded as described.
   */
  moreTargets?: ExtraTargetOptions[];
}

/** A target of LocalStackOptions.moreTargets: its name and what its servers are seeded with. */
export interface ExtraTargetOptions {
  name: string;
  flowRuns?: number;
  devices?: number;
  /** Its Root node's uuid (Infrahub's deployment id); default "root". */
  rootUuid?: string;
  storageFiles?: Record<string, string>;
}

/**
 * A started local deployment with a target named `infrahub-lab` (and `moreTargets`). Stop it with
 * `stop()`.
 */
export interface LocalStack {
  postgres: PostgresServer;
  neo4j: Neo4jServer;
  /** The moto server. */
  aws: S3Server;
  infrahub: FakeInfrahub;
  /** The artifact storage folder (removed by `stop()`). */
  storage: string;
  target: LocalTarget;
  /** Every target: `infrahub-lab` (`target`) first, then `moreTargets` with their own servers. */
  targets: LocalTarget[];
  config: DeploymentConfig;
  /** The local AWS stand-ins on moto (bucket, topic, secrets and their clients). */
  local: LocalAws;
  synthesized: SynthesizedBackup;
  /**
   * The options every local execution of this stack takes: configuration, AWS, the target's runtime,
   * the synthesized app, no retry pauses, and a start time one second after the previous call's (so
   * each execution gets its own backup id). Spread extra options over it.
   */
  runOptions(): LocalBackupOptions & { startTime: Date };
  /**
   * The CloudWatch embedded metric format lines the notices wrote in runs given runOptions(), in
   * order (a Lambda writes them to its log output, where CloudWatch extracts the metrics).
   */
  metrics: string[];
  /** Stops the fake API and the servers (by PID) and removes the storage folder; never throws. */
  stop(): Promise<void>;
}

/**
 * Starts PostgreSQL, Neo4j and moto in parallel (and a PostgreSQL and a Neo4j per further target),
 * then the fake Infrahub API; seeds them, writes the storage files, provisions moto and synthesizes
 * the app for the resulting configuration. Anything
 * started is stopped again when a later step fails (the error is rethrown). Takes tens of seconds
 * (two JVMs and a PostgreSQL cluster): call it from a beforeAll with a generous time limit.
 */
export async function startLocalStack(options: LocalStackOptions): Promise<LocalStack> {
  const started: Partial<Pick<LocalStack, 'postgres' | 'neo4j' | 'aws' | 'infrahub' | 'storage'>> = {};
  // The servers and storage folders of moreTargets, as they start.
  const extra: { servers: Array<PostgresServer | Neo4jServer>; storages: string[] } = {
    servers: [],
    storages: [],
  };
  const stop = async () => {
    await started.infrahub?.close().catch(() => undefined);
    await Promise.allSettled([
      started.postgres?.stop(),
      started.neo4j?.stop(),
      started.aws?.stop(),
      ...extra.servers.map((s) => s.stop()),
    ]);
    if (started.storage) removeHarnessDir(started.storage);
    for (const dir of extra.storages) removeHarnessDir(dir);
  };
  const more = options.moreTargets ?? [];
  /** A storage folder holding `files` (path relative to it → UTF-8 content). */
  const storageWith = (prefix: string, files: Record<string, string> = {}) => {
    const dir = harnessTempDir(prefix);
    for (const [path, content] of Object.entries(files)) {
      mkdirSync(dirname(join(dir, path)), { recursive: true });
      writeFileSync(join(dir, path), content);
    }
    return dir;
  };
  try {
    const servers = await Promise.allSettled([startPostgres(), startNeo4j(), startS3()]);
    const [pgStart, neo4jStart, awsStart] = servers;
    if (pgStart.status === 'fulfilled') started.postgres = pgStart.value;
    if (neo4jStart.status === 'fulfilled') started.neo4j = neo4jStart.value;
    if (awsStart.status === 'fulfilled') started.aws = awsStart.value;
    // Each further target's PostgreSQL and Neo4j, started beside them.
    const moreServers = await Promise.allSettled(
      more.map(async () => {
        const [pg, graph] = await Promise.allSettled([startPostgres(), startNeo4j()]);
        for (const s of [pg, graph]) if (s.status === 'fulfilled') extra.servers.push(s.value);
        for (const s of [pg, graph]) if (s.status === 'rejected') throw s.reason;
        return {
          postgres: (pg as PromiseFulfilledResult<PostgresServer>).value,
          neo4j: (graph as PromiseFulfilledResult<Neo4jServer>).value,
        };
      }),
    );
    for (const s of [...servers, ...moreServers]) if (s.status === 'rejected') throw s.reason;
    const { postgres, neo4j, aws } = started as Required<typeof started>;
    const infrahub = await startFakeInfrahub(options.infrahub ?? { script: () => [] });
    started.infrahub = infrahub;
    if (options.flowRuns !== undefined) await seedPrefect(postgres, { flowRuns: options.flowRuns });
    if (options.devices !== undefined)
      await seedGraph(neo4j, {
        devices: options.devices,
        ...(options.rootUuid ? { rootUuid: options.rootUuid } : {}),
      });
    const storage = storageWith(options.storagePrefix ?? 'stack-storage-', options.storageFiles);
    started.storage = storage;
    const api = { address: infrahub.address, token: infrahub.token };
    const target: LocalTarget = {
      name: 'infrahub-lab',
      postgres,
      neo4j,
      infrahub: api,
      storagePath: storage,
    };
    const targets = [target];
    for (const [i, t] of more.entries()) {
      const s = (moreServers[i] as PromiseFulfilledResult<{ postgres: PostgresServer; neo4j: Neo4jServer }>)
        .value;
      if (t.flowRuns !== undefined) await seedPrefect(s.postgres, { flowRuns: t.flowRuns });
      if (t.devices !== undefined)
        await seedGraph(s.neo4j, { devices: t.devices, ...(t.rootUuid ? { rootUuid: t.rootUuid } : {}) });
      const dir = storageWith(`${t.name}-storage-`, t.storageFiles);
      extra.storages.push(dir);
      targets.push({ name: t.name, ...s, infrahub: api, storagePath: dir });
    }
    const byName = new Map(targets.map((t) => [t.name, t]));
    const base = localDeploymentConfig(targets, options.preflight ? { preflight: options.preflight } : {});
    const config = options.configure ? options.configure(base) : base;
    const local = await provisionLocalAws(aws, options.bucket, targets);
    const synthesized = synthesizeBackup(config);
    let clock = options.clockStart ?? Date.parse('2026-11-21T02:00:00Z');
    const metrics: string[] = [];
    return {
      postgres,
      neo4j,
      aws,
      infrahub,
      storage,
      target,
      targets,
      config,
      local,
      synthesized,
      runOptions: () => {
        clock += 1000;
        return {
          config,
          aws: local,
          runtime: (name: string) => localRuntime(byName.get(name) ?? target),
          synthesized,
          retryIntervalMs: 0,
          startTime: new Date(clock),
          onMetrics: (line: string) => metrics.push(line),
        };
      },
      metrics,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * The configuration of one Enterprise target, `infrahub-lab`, that a test never reaches: hosts under
 * `.lab.internal`, secrets `lab/neo4j`, `lab/pg` and `lab/token`, artifacts in the S3 bucket
 * `infrahub-lab-artifacts`. For the state machines run against moto alone (the input checks, the
 * preflight gate against a fake Infrahub at `infrahubAddress`, an artifacts-only backup).
 * @throws ConfigError as parseDeploymentConfig does (never for the defaults).
 */
export function unreachableTargetConfig(
  options: { name?: string; infrahubAddress?: string; preflight?: DeploymentConfigInput['preflight'] } = {},
): DeploymentConfig {
  return parseDeploymentConfig(
    {
      name: options.name ?? 'unreachable',
      region: 'us-east-1',
      network: { vpcId: 'vpc-00000000', subnetIds: ['subnet-00000000'], availabilityZones: ['us-east-1a'] },
      targets: [
        {
          name: 'infrahub-lab',
          neo4j: {
            host: 'neo4j.lab.internal',
            edition: 'enterprise',
            licence: 'evaluation',
            version: '5.26.26',
            credentialsSecret: 'lab/neo4j',
          },
          postgres: { host: 'prefect.lab.internal', majorVersion: 15, credentialsSecret: 'lab/pg' },
          infrahub: {
            address: options.infrahubAddress ?? 'https://infrahub.lab.example.com',
            tokenSecret: 'lab/token',
          },
          artifacts: { type: 's3', bucket: 'infrahub-lab-artifacts' },
        },
      ],
      retention: { daily: 7, weekly: 4, monthly: 12 },
      ...(options.preflight ? { preflight: options.preflight } : {}),
    },
    'test',
  );
}
