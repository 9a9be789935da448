import { describe, expect, it } from 'vitest';
import { chainFiles, parseDatabaseInfo } from '../../containers/runner/src/components/neo4j.js';
import { parseToolVersion } from '../../containers/runner/src/components/postgres.js';
import {
  ArtifactsEnvSchema,
  Neo4jEnvSchema,
  PostgresEnvSchema,
  parseEnv,
} from '../../containers/runner/src/env.js';
import { ErrorNames } from '../../core/errors.js';
import { createLogger } from '../../core/log.js';
import { compositeChecksum, partSizeFor } from '../../core/s3/upload-stream.js';

const base = {
  TARGET: 'infrahub-lab',
  BACKUP_ID: 'infrahub_backup_20261121_020000',
  BACKUP_BUCKET: 'backups',
};

describe('runner environment', () => {
  it('applies defaults', () => {
    const env = parseEnv(PostgresEnvSchema, {
      ...base,
      PGHOST: 'db',
      PGUSER: 'postgres',
      PGPASSWORD: 's3cr3t',
    });
    expect(env.PGPORT).toBe(5432);
    expect(env.PGDATABASE).toBe('prefect');
    expect(env.S3_PART_SIZE_MIB).toBe(8);
    expect(env.S3_FORCE_PATH_STYLE).toBe(false);
    expect(env.PG_DUMP_COMPRESS).toBe('1');
  });

  it('accepts pg_dump compression specs and rejects others', () => {
    const pgEnv = { ...base, PGHOST: 'db', PGUSER: 'postgres', PGPASSWORD: 'x' };
    for (const ok of ['0', '6', 'zstd:3', 'lz4', 'none', 'gzip:9']) {
      expect(parseEnv(PostgresEnvSchema, { ...pgEnv, PG_DUMP_COMPRESS: ok }).PG_DUMP_COMPRESS).toBe(ok);
    }
    expect(() => parseEnv(PostgresEnvSchema, { ...pgEnv, PG_DUMP_COMPRESS: 'brotli' })).toThrowError(
      /PG_DUMP_COMPRESS: must be a pg_dump --compress value/,
    );
  });

  it('names every missing or bad variable, and never echoes a value', () => {
    try {
      parseEnv(PostgresEnvSchema, {
        ...base,
        BACKUP_ID: 'yesterday',
        PGHOST: 'db',
        PGUSER: 'u',
        PGPORT: 'hunter2-port',
        S3_ENDPOINT: 'not a url hunter2',
      });
      expect.unreachable();
    } catch (err) {
      const e = err as Error;
      expect(e.name).toBe(ErrorNames.RunnerConfigError);
      expect(e.message).toMatch(/BACKUP_ID: must look like "infrahub_backup_YYYYMMDD_HHMMSS"/);
      expect(e.message).toMatch(/PGPASSWORD: is required/);
      expect(e.message).toMatch(/PGPORT: /);
      expect(e.message).toMatch(/S3_ENDPOINT: must be a URL/);
      expect(e.message).not.toMatch(/hunter2/);
    }
  });

  it('takes every member the configuration accepts, IPv6 included, and refuses what it refuses', () => {
    const members = 'core-1.internal:6362,10.0.0.7:6362,[fd00::1]:6362';
    expect(
      parseEnv(Neo4jEnvSchema, { ...base, NEO4J_EDITION: 'enterprise', NEO4J_BACKUP_FROM: members })
        .NEO4J_BACKUP_FROM,
    ).toEqual(members.split(','));
    for (const twice of ['A:6362,a:6362', '[fd00:0::1]:6362,[FD00::1]:6362'])
      expect(() =>
        parseEnv(Neo4jEnvSchema, { ...base, NEO4J_EDITION: 'enterprise', NEO4J_BACKUP_FROM: twice }),
      ).toThrowError(/NEO4J_BACKUP_FROM: must not name a member twice/);
    // An IPv4 address in another spelling (127.1, 010.0.0.1, IPv4-mapped IPv6) would be another
    // member than its dotted form: refused, as the configuration refuses it.
    for (const bad of [
      '[fe80::1%eth0]:6362',
      'a.internal',
      'a.internal:6362,',
      '[neo4j]:6362',
      '127.1:6362',
      '010.0.0.1:6362',
      '999.1.1.1:6362',
      '[::ffff:10.0.0.5]:6362',
      'a.internal.:6362',
    ])
      expect(() =>
        parseEnv(Neo4jEnvSchema, { ...base, NEO4J_EDITION: 'enterprise', NEO4J_BACKUP_FROM: bad }),
      ).toThrowError(/NEO4J_BACKUP_FROM: must be host:port/);
  });

  it('requires the backup listener for Enterprise', () => {
    expect(() => parseEnv(Neo4jEnvSchema, { ...base, NEO4J_EDITION: 'enterprise' })).toThrowError(
      /NEO4J_BACKUP_FROM: is required/,
    );
    const env = parseEnv(Neo4jEnvSchema, {
      ...base,
      NEO4J_EDITION: 'community',
      NEO4J_DATABASES: 'neo4j, system',
    });
    expect(env.NEO4J_DATABASES).toEqual(['neo4j', 'system']);
  });

  it('requires the source of the artifacts it is told to copy', () => {
    expect(() => parseEnv(ArtifactsEnvSchema, { ...base, ARTIFACTS_SOURCE: 's3' })).toThrowError(
      /ARTIFACTS_BUCKET: is required/,
    );
    expect(() =>
      parseEnv(ArtifactsEnvSchema, { ...base, ARTIFACTS_SOURCE: 'path', ARTIFACTS_PATH: 'rel' }),
    ).toThrowError(/ARTIFACTS_PATH: must be an absolute path/);
  });
});

describe('tool output parsing', () => {
  it('reads pg_dump versions', () => {
    expect(parseToolVersion('pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)')).toEqual({
      version: '15.18',
      major: 15,
    });
    expect(parseToolVersion('pg_dump (PostgreSQL) 18beta1')).toEqual({ version: '18', major: 18 });
    expect(() => parseToolVersion('command not found')).toThrowError(/cannot read a PostgreSQL version/);
  });

  it('reads whether a Neo4j database is in use and its last transaction', () => {
    const out =
      'Database name:                neo4j\nDatabase in use:              false\nLast committed transaction id:7\n';
    expect(parseDatabaseInfo(out)).toEqual({ inUse: false, lastCommittedTx: 7 });
    expect(parseDatabaseInfo('Database in use: true').inUse).toBe(true);
    expect(() => parseDatabaseInfo('garbage')).toThrowError(/unexpected/);
  });

  it('finds the backup chain of one database, oldest first', () => {
    const names = [
      'neo4j-2026-11-21T02-00-00.backup',
      'neo4j-2026-11-20T02-00-00.backup',
      'neo4j2-2026-11-21T02-00-00.backup',
      'system-2026-11-21T02-00-00.backup',
      'neo4j.dump',
    ];
    expect(chainFiles(names, 'neo4j')).toEqual([
      'neo4j-2026-11-20T02-00-00.backup',
      'neo4j-2026-11-21T02-00-00.backup',
    ]);
  });
});

describe('multipart arithmetic', () => {
  it('doubles the part size every 1,000 parts so 10,000 parts reach terabytes', () => {
    const MiB = 1024 * 1024;
    expect(partSizeFor(1, 16 * MiB)).toBe(16 * MiB);
    expect(partSizeFor(1000, 16 * MiB)).toBe(16 * MiB);
    expect(partSizeFor(1001, 16 * MiB)).toBe(32 * MiB);
    let total = 0;
    for (let n = 1; n <= 10_000; n++) total += partSizeFor(n, 16 * MiB);
    expect(total / 1024 ** 4).toBeGreaterThan(15);
  });

  it('computes the composite checksum S3 reports for multipart objects', () => {
    const d1 = Buffer.alloc(32, 1);
    const d2 = Buffer.alloc(32, 2);
    expect(compositeChecksum([d1, d2])).toMatch(/^[A-Za-z0-9+/]{43}=-2$/);
  });
});

describe('structured logs', () => {
  it('puts context on every line and redacts secrets', () => {
    const lines: string[] = [];
    const log = createLogger({ target: 'lab' }, { write: (l) => lines.push(l) }).child({ backupId: 'b1' });
    log.info('connecting', { password: 'hunter2', nested: { PGPASSWORD: 'x', apiToken: 'y' }, host: 'db' });
    const entry = JSON.parse(lines[0] ?? '{}');
    expect(entry).toMatchObject({
      level: 'INFO',
      message: 'connecting',
      target: 'lab',
      backupId: 'b1',
      host: 'db',
    });
    expect(entry.password).toBe('[redacted]');
    expect(entry.nested).toEqual({ PGPASSWORD: '[redacted]', apiToken: '[redacted]' });
    expect(lines[0]).not.toMatch(/hunter2/);
  });
});
