import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatPath, loadDeploymentConfigFile, parseDeploymentConfig } from '../../core/config/load.js';
import { ConfigError, ErrorNames } from '../../core/errors.js';

const examplePath = 'config/example.json';
const example = (): Record<string, unknown> => JSON.parse(readFileSync(examplePath, 'utf8'));

/** The example configuration with one change applied by `edit`. */
// biome-ignore lint/suspicious/noExplicitAny: each case edits arbitrary JSON on purpose
function exampleWith(edit: (config: any) => void): unknown {
  const config = example();
  edit(config);
  return config;
}

function problemsOf(raw: unknown): string[] {
  try {
    parseDeploymentConfig(raw, 'test');
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return [...(err as ConfigError).problems];
  }
  throw new Error('expected the configuration to be rejected');
}

describe('deployment configuration', () => {
  it('accepts the example configuration and fills in defaults', () => {
    const config = loadDeploymentConfigFile(examplePath);
    expect(config.targets.map((t) => t.name)).toEqual(['infrahub-prod', 'infrahub-lab']);
    const lab = config.targets[1];
    expect(lab?.neo4j.boltPort).toBe(7687);
    expect(lab?.neo4j.backupPort).toBe(6362);
    expect(lab?.neo4j.databases).toEqual(['neo4j', 'system']);
    expect(lab?.postgres.port).toBe(5432);
    expect(lab?.postgres.database).toBe('prefect');
    expect(config.schedules[0]?.enabled).toBe(true);
    expect(config.retention.yearly).toBe(0);
  });

  it('accepts an Object Lock that fits the retention', () => {
    const config = parseDeploymentConfig(
      exampleWith((c) => {
        c.objectLock = { mode: 'GOVERNANCE', days: 7 };
      }),
      'test',
    );
    expect(config.objectLock).toEqual({ mode: 'GOVERNANCE', days: 7 });
    expect(config.retention.incompleteDays).toBe(7);
  });

  it('strips a trailing slash from the Infrahub address', () => {
    const config = parseDeploymentConfig(
      exampleWith((c) => {
        c.targets[0].infrahub.address = 'https://infrahub.example.com/';
      }),
      'test',
    );
    expect(config.targets[0]?.infrahub.address).toBe('https://infrahub.example.com');
  });

  // Each bad configuration must be rejected with a message naming the field and the reason.
  // biome-ignore lint/suspicious/noExplicitAny: each case edits arbitrary JSON on purpose
  const badConfigs: Array<{ case: string; edit: (c: any) => void; field: string; reason: RegExp }> = [
    {
      case: 'a port out of range',
      edit: (c) => {
        c.targets[0].neo4j.boltPort = 70000;
      },
      field: 'targets[0].neo4j.boltPort',
      reason: /65535/,
    },
    {
      case: 'an unknown Neo4j edition',
      edit: (c) => {
        c.targets[1].neo4j.edition = 'professional';
      },
      field: 'targets[1].neo4j.edition',
      reason: /community.*enterprise/,
    },
    {
      case: 'a Community target without the DBMS service to stop for its offline dump',
      edit: (c) => {
        delete c.targets[1].neo4j.dbms;
      },
      field: 'targets[1].neo4j.dbms',
      reason: /required for a Community target.*ECS service to stop/,
    },
    {
      case: 'an Enterprise target with a DBMS service to stop',
      edit: (c) => {
        c.targets[0].neo4j.dbms = { cluster: 'c', service: 's', dataEfsFileSystemId: 'fs-0a1b2c3d' };
      },
      field: 'targets[0].neo4j.dbms',
      reason: /Community targets only/,
    },
    {
      case: 'an Object Lock longer than daily backups are kept',
      edit: (c) => {
        c.objectLock = { mode: 'COMPLIANCE', days: 30 };
      },
      field: 'objectLock.days',
      reason:
        /\(30\) contradicts retention\.daily \(7\): .*COMPLIANCE Object Lock keeps every version for 30; lower objectLock\.days to at most 7 or raise retention\.daily to at least 30/,
    },
    {
      case: 'an Object Lock longer than failed backups are kept',
      edit: (c) => {
        c.retention.daily = 35;
        c.objectLock = { mode: 'GOVERNANCE', days: 14 };
      },
      field: 'objectLock.days',
      reason: /contradicts retention\.incompleteDays \(7\)/,
    },
    {
      case: 'a missing PostgreSQL host',
      edit: (c) => {
        delete c.targets[0].postgres.host;
      },
      field: 'targets[0].postgres.host',
      reason: /is required/,
    },
    {
      case: 'a password pasted where a secret reference belongs',
      edit: (c) => {
        c.targets[0].neo4j.password = 'hunter2';
      },
      field: 'targets[0].neo4j',
      reason: /unknown key "password"/,
    },
    {
      case: 'a secret reference with spaces',
      edit: (c) => {
        c.targets[0].neo4j.credentialsSecret = 'my secret';
      },
      field: 'targets[0].neo4j.credentialsSecret',
      reason: /Secrets Manager secret name or ARN/,
    },
    {
      case: 'two targets with one name',
      edit: (c) => {
        c.targets[1].name = 'infrahub-prod';
      },
      field: 'targets[1].name',
      reason: /duplicates target name "infrahub-prod"/,
    },
    {
      case: 'a schedule naming an unknown target',
      edit: (c) => {
        c.schedules[1].targets = ['infrahub-stage'];
      },
      field: 'schedules[1].targets[0]',
      reason: /"infrahub-stage", which is not configured/,
    },
    {
      case: 'an invalid schedule expression',
      edit: (c) => {
        c.schedules[0].expression = '0 2 * * *';
      },
      field: 'schedules[0].expression',
      reason: /EventBridge Scheduler expression/,
    },
    {
      case: 'replication into the primary region',
      edit: (c) => {
        c.replication.region = 'eu-west-1';
      },
      field: 'replication.region',
      reason: /must differ from the primary region/,
    },
    {
      case: 'an invalid Object Lock mode',
      edit: (c) => {
        c.objectLock = { mode: 'STRICT', days: 30 };
      },
      field: 'objectLock.mode',
      reason: /GOVERNANCE.*COMPLIANCE/,
    },
    {
      case: 'zero daily backups',
      edit: (c) => {
        c.retention.daily = 0;
      },
      field: 'retention.daily',
      reason: /at least one daily backup/,
    },
    {
      case: 'an artifact path that is not absolute',
      edit: (c) => {
        c.targets[1].artifacts.path = 'opt/infrahub/storage';
      },
      field: 'targets[1].artifacts.path',
      reason: /absolute path/,
    },
    {
      case: 'an artifact storage of unknown type',
      edit: (c) => {
        c.targets[0].artifacts = { type: 'gcs', bucket: 'x' };
      },
      field: 'targets[0].artifacts.type',
      reason: /"s3" or "path"/,
    },
    {
      case: 'a subnet without its availability zone',
      edit: (c) => {
        c.network.availabilityZones = ['eu-west-1a'];
      },
      field: 'network.availabilityZones',
      reason: /one availability zone per subnet/,
    },
    {
      case: 'no targets at all',
      edit: (c) => {
        c.targets = [];
        c.schedules = [];
      },
      field: 'targets',
      reason: /at least one Infrahub target/,
    },
    {
      case: 'a notification address that is not an e-mail',
      edit: (c) => {
        c.notifications.emails = ['oncall'];
      },
      field: 'notifications.emails[0]',
      reason: /e-mail address/,
    },
  ];

  it.each(badConfigs)('rejects $case, naming $field', ({ edit, field, reason }) => {
    const problems = problemsOf(exampleWith(edit));
    const problem = problems.find((p) => p.startsWith(`${field}: `));
    expect(problem, `no problem reported for ${field}; got:\n${problems.join('\n')}`).toBeDefined();
    expect(problem).toMatch(reason);
  });

  it('reports every problem at once, not only the first', () => {
    const problems = problemsOf(
      exampleWith((c) => {
        c.region = 'Ireland';
        c.targets[0].postgres.majorVersion = 'eighteen';
      }),
    );
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^region: must be an AWS region code/),
        expect.stringMatching(/^targets\[0\]\.postgres\.majorVersion: .*number/),
      ]),
    );
  });

  it('names the file and the JSON syntax error of an unparsable file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'config-test-'));
    const file = join(dir, 'broken.json');
    writeFileSync(file, '{ "region": "eu-west-1", }');
    expect(() => loadDeploymentConfigFile(file)).toThrowError(/broken\.json[\s\S]*is not valid JSON/);
  });

  it('names a file that does not exist', () => {
    expect(() => loadDeploymentConfigFile('config/nope.json')).toThrowError(
      /config\/nope\.json[\s\S]*cannot read the file/,
    );
  });

  it('gives configuration errors the stable name that callers match on', () => {
    try {
      parseDeploymentConfig({}, 'test');
      expect.unreachable();
    } catch (err) {
      expect((err as Error).name).toBe(ErrorNames.ConfigError);
    }
  });

  it('formats field paths the way users write them', () => {
    expect(formatPath(['targets', 0, 'neo4j', 'boltPort'])).toBe('targets[0].neo4j.boltPort');
    expect(formatPath([])).toBe('(root)');
  });
});
