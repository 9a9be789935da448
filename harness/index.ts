/**
 * The test harness: real PostgreSQL, Neo4j Community and an S3-compatible server, each started on
 * 127.0.0.1 with a free port and stopped by PID. Used by the integration tests and the demo.
 */
export { HarnessStartError } from './errors.js';
export {
  type ActiveRule,
  type Fault,
  type FaultProxy,
  type FaultRule,
  startFaultProxy,
} from './fault-proxy.js';
export { type Neo4jOptions, type Neo4jServer, startNeo4j } from './neo4j.js';
export { isNeo4jInstalled, neo4jLibDir, neo4jVersion, neo4jVersions, repoRoot } from './paths.js';
export { findPostgresBinDir, type PostgresOptions, type PostgresServer, startPostgres } from './postgres.js';
export { freePort } from './processes.js';
export {
  createVersionedBucket,
  localCredentials,
  localRegion,
  putArtifactsRecord,
  type S3Seed,
  type S3Server,
  type SeededObject,
  type StartS3Options,
  startS3,
} from './s3.js';
export {
  countGraph,
  countTables,
  type GraphCounts,
  seedGraph,
  seedPrefect,
  type TableCounts,
} from './sample-data.js';
