import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { planBackup } from '../../core/backup/plan.js';
import { formatPath, loadDeploymentConfigFile, parseDeploymentConfig } from '../../core/config/load.js';
import { lambdaListedArns, MAX_TARGETS } from '../../core/config/schema.js';
import { ConfigError, ErrorNames } from '../../core/errors.js';
import { example, exampleWith, problemsOf } from '../helpers/config.js';
import { testTempDir } from '../helpers/temp.js';

const examplePath = 'config/example.json';

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
      reason: /target "infrahub-stage" is not configured/,
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
    const dir = testTempDir('config-test-');
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

// Issue 12, item 16: every path-like and name-like field refuses what would climb out of its place.
describe('deployment configuration: path-like and name-like fields', () => {
  // biome-ignore lint/suspicious/noExplicitAny: each case edits arbitrary JSON on purpose
  const cases: Array<{ case: string; edit: (c: any) => void; field: string; reason: RegExp }> = [
    {
      case: '"../" in an S3 artifact prefix',
      edit: (c) => {
        c.targets[0].artifacts.prefix = 'artifacts/../other-target/';
      },
      field: 'targets[0].artifacts.prefix',
      reason: /must not contain "\." or "\.\." path segments/,
    },
    {
      case: 'a prefix that is only ".."',
      edit: (c) => {
        c.targets[0].artifacts.prefix = '../';
      },
      field: 'targets[0].artifacts.prefix',
      reason: /"\.\." path segments/,
    },
    {
      case: 'an S3 prefix with "//"',
      edit: (c) => {
        c.targets[0].artifacts.prefix = 'a//b/';
      },
      field: 'targets[0].artifacts.prefix',
      reason: /empty path segments/,
    },
    {
      case: 'an S3 prefix with shell characters',
      edit: (c) => {
        c.targets[0].artifacts.prefix = '$(id)/';
      },
      field: 'targets[0].artifacts.prefix',
      reason: /segments of letters, digits/,
    },
    {
      case: '"../" in an artifact path',
      edit: (c) => {
        c.targets[1].artifacts.path = '/opt/infrahub/../../etc';
      },
      field: 'targets[1].artifacts.path',
      reason: /"\.\." path segments/,
    },
    {
      case: 'a "." segment in an artifact path',
      edit: (c) => {
        c.targets[1].artifacts.path = '/opt/./storage';
      },
      field: 'targets[1].artifacts.path',
      reason: /"\." or "\.\." path segments/,
    },
    {
      case: 'a control character in an artifact path',
      edit: (c) => {
        c.targets[1].artifacts.path = '/opt/infrahub\nstorage';
      },
      field: 'targets[1].artifacts.path',
      reason: /control characters/,
    },
    {
      case: '"../" in the DBMS data root directory',
      edit: (c) => {
        c.targets[1].neo4j.dbms.dataRootDirectory = '/neo4j/../../';
      },
      field: 'targets[1].neo4j.dbms.dataRootDirectory',
      reason: /"\.\." path segments/,
    },
    {
      case: 'a relative DBMS data root directory',
      edit: (c) => {
        c.targets[1].neo4j.dbms.dataRootDirectory = 'neo4j';
      },
      field: 'targets[1].neo4j.dbms.dataRootDirectory',
      reason: /absolute path/,
    },
    {
      case: '"../" in the artifacts\' EFS root directory',
      edit: (c) => {
        c.targets[1].artifacts.efsRootDirectory = '/infrahub/../..';
      },
      field: 'targets[1].artifacts.efsRootDirectory',
      reason: /"\.\." path segments/,
    },
    {
      case: 'a relative artifacts EFS root directory',
      edit: (c) => {
        c.targets[1].artifacts.efsRootDirectory = 'infrahub/storage';
      },
      field: 'targets[1].artifacts.efsRootDirectory',
      reason: /absolute path/,
    },
    {
      case: '"../" in a Neo4j credentials secret name',
      edit: (c) => {
        c.targets[0].neo4j.credentialsSecret = '../infrahub-prod/neo4j';
      },
      field: 'targets[0].neo4j.credentialsSecret',
      reason: /"\.\." path segments/,
    },
    {
      case: '"../" in a PostgreSQL credentials secret name',
      edit: (c) => {
        c.targets[0].postgres.credentialsSecret = 'infrahub-prod/../admin';
      },
      field: 'targets[0].postgres.credentialsSecret',
      reason: /"\.\." path segments/,
    },
    {
      case: 'a character Secrets Manager does not allow in a token secret name',
      edit: (c) => {
        c.targets[0].infrahub.tokenSecret = 'infrahub-prod/api-token#1';
      },
      field: 'targets[0].infrahub.tokenSecret',
      reason: /1-512 ASCII letters, digits and "\/_\+=\.@-"/,
    },
    {
      case: 'a secret ARN without the six-character suffix (a partial ARN)',
      edit: (c) => {
        c.targets[0].neo4j.credentialsSecret =
          'arn:aws:secretsmanager:eu-west-1:123456789012:secret:infrahub-prod/neo4j';
      },
      field: 'targets[0].neo4j.credentialsSecret',
      reason:
        /is a partial secret ARN: a complete ARN ends in "-" and the six characters Secrets Manager appends/,
    },
    {
      case: '"../" inside a secret ARN',
      edit: (c) => {
        c.targets[0].neo4j.credentialsSecret =
          'arn:aws:secretsmanager:eu-west-1:123456789012:secret:../neo4j-AbC123';
      },
      field: 'targets[0].neo4j.credentialsSecret',
      reason: /"\.\." path segments/,
    },
    {
      case: 'an ECS service name with "../"',
      edit: (c) => {
        c.targets[1].neo4j.dbms.service = '../neo4j';
      },
      field: 'targets[1].neo4j.dbms.service',
      reason: /"\.\." path segments/,
    },
    {
      case: 'a host with an empty label',
      edit: (c) => {
        c.targets[0].postgres.host = 'prefect..internal';
      },
      field: 'targets[0].postgres.host',
      reason: /no empty labels/,
    },
    {
      case: 'a schedule expression with a command substitution',
      edit: (c) => {
        c.schedules[0].expression = 'cron(0 2 * * ? *)$(reboot)';
      },
      field: 'schedules[0].expression',
      reason: /is not an EventBridge Scheduler expression/,
    },
    {
      case: 'a command substitution inside the cron fields',
      edit: (c) => {
        c.schedules[0].expression = 'cron(0 $(id) * * ? *)';
      },
      field: 'schedules[0].expression',
      reason: /"cron\(0 \$\(id\) \* \* \? \*\)" is not an EventBridge Scheduler expression/,
    },
    {
      case: 'a shell word inside the cron fields',
      edit: (c) => {
        c.schedules[0].expression = 'cron(0 `id` * * ? *)';
      },
      field: 'schedules[0].expression',
      reason: /hours: "`id`" is not a value, range, list or increment/,
    },
    {
      case: 'a cron minute out of range',
      edit: (c) => {
        c.schedules[0].expression = 'cron(61 2 * * ? *)';
      },
      field: 'schedules[0].expression',
      reason: /minutes: "61" is not a value from 0 to 59/,
    },
    {
      case: 'a cron with both day fields given',
      edit: (c) => {
        c.schedules[0].expression = 'cron(0 2 * * MON *)';
      },
      field: 'schedules[0].expression',
      reason: /exactly one of day-of-month and day-of-week must be "\?"/,
    },
    {
      case: 'a five-field Unix cron',
      edit: (c) => {
        c.schedules[0].expression = 'cron(0 2 * * ?)';
      },
      field: 'schedules[0].expression',
      reason: /needs six fields/,
    },
    {
      case: 'an unknown time zone',
      edit: (c) => {
        c.schedules[0].timezone = 'Europe/Berln';
      },
      field: 'schedules[0].timezone',
      reason: /"Europe\/Berln" is not an IANA time zone name/,
    },
    {
      case: 'a UTC offset instead of a zone name',
      edit: (c) => {
        c.schedules[0].timezone = '+01:00';
      },
      field: 'schedules[0].timezone',
      reason: /not an IANA time zone name/,
    },
  ];

  it.each(cases)('rejects $case, naming $field', ({ edit, field, reason }) => {
    const problems = problemsOf(exampleWith(edit));
    const problem = problems.find((p) => p.startsWith(`${field}: `));
    expect(problem, `no problem reported for ${field}; got:\n${problems.join('\n')}`).toBeDefined();
    expect(problem).toMatch(reason);
  });

  it('accepts the neighbours that are fine: nested prefixes, secret ARNs, names with dots, EventBridge cron features', () => {
    const config = parseDeploymentConfig(
      exampleWith((c) => {
        c.targets[0].artifacts.prefix = 'infrahub/artifacts.v2/';
        c.targets[0].neo4j.credentialsSecret =
          'arn:aws:secretsmanager:eu-west-1:123456789012:secret:infrahub-prod/neo4j-AbC123';
        c.targets[0].postgres.credentialsSecret = 'infrahub-prod/prefect.pg@main';
        c.targets[1].neo4j.dbms.dataRootDirectory = '/neo4j-data/.hidden-not-dots';
        c.targets[1].neo4j.dbms.cluster = 'arn:aws:ecs:eu-west-1:123456789012:cluster/infrahub-lab';
        c.schedules[0].expression = 'cron(15 1,13 ? * MON-FRI *)';
        c.schedules[1].expression = 'cron(0 6 ? * 2#1 *)';
        c.schedules[1].timezone = 'America/New_York';
        c.schedules.push({
          name: 'weekend',
          kind: 'backup',
          expression: 'cron(0 3 ? * SAT,SUN *)',
          targets: '*',
        });
        c.schedules.push({
          name: 'last',
          kind: 'restore-drill',
          expression: 'cron(0 5 LW * ? 2026-2199)',
          targets: '*',
        });
      }),
      'test',
    );
    expect(config.targets[0]?.artifacts).toMatchObject({ prefix: 'infrahub/artifacts.v2/' });
  });
});

// Issue 12, item 15: schedules are checked against the time zones they name, and against rpoHours.
describe('deployment configuration: schedules in their time zones', () => {
  const from = new Date('2026-11-30T00:00:00Z');
  // biome-ignore lint/suspicious/noExplicitAny: each case edits arbitrary JSON on purpose
  const problemsAt = (edit: (c: any) => void, at: Date | undefined = from): string[] => {
    try {
      parseDeploymentConfig(exampleWith(edit), 'test', { scheduleCheckFrom: at });
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return [...(err as ConfigError).problems];
    }
    return [];
  };
  // biome-ignore lint/suspicious/noExplicitAny: each case edits arbitrary JSON on purpose
  const nightly = (expression: string, timezone: string) => (c: any) => {
    c.schedules[0].expression = expression;
    c.schedules[0].timezone = timezone;
  };

  it('refuses 02:30 every night in Europe/Berlin: the spring-forward night has no 02:30 and the backup would be skipped', () => {
    const problems = problemsAt(nightly('cron(30 2 * * ? *)', 'Europe/Berlin'));
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(
      /^schedules\[0\]\.expression: schedule "nightly": "cron\(30 2 \* \* \? \*\)" fires at 02:30 in Europe\/Berlin, which does not exist on the spring-forward nights 2027-03-28, 2028-03-26, 2029-03-25, 2030-03-31 and 4 more within 8 years \(the clocks skip 02:00-03:00\): EventBridge Scheduler skips those runs, leaving 47 hours between runs; schedule it outside the skipped hour 02:00-03:00 local time, or use the time zone "UTC"$/,
    );
    // And the RPO check sees the same 47-hour interval.
    expect(problems[1]).toMatch(
      /^rpoHours: is 26, but the backup schedule "nightly" \(cron\(30 2 \* \* \? \*\), Europe\/Berlin\) leaves 47 hours between backups \(from 2027-03-27 01:30 UTC to 2027-03-29 00:30 UTC\)/,
    );
    // Without an explicit instant the check runs from now, and still refuses.
    expect(problemsAt(nightly('cron(30 2 * * ? *)', 'Europe/Berlin'), undefined)[0]).toMatch(
      /Europe\/Berlin/,
    );
  });

  it.each([
    [
      'cron(15 2 ? * SUN *)',
      'America/New_York',
      /02:15 in America\/New_York.*2027-03-14.*clocks skip 02:00-03:00/,
    ],
    ['cron(0 0 * * ? *)', 'America/Santiago', /00:00 in America\/Santiago.*clocks skip 00:00-01:00/],
    [
      'cron(0/20 1 * * ? *)',
      'Europe/London',
      /01:00, 01:20, 01:40 in Europe\/London.*clocks skip 01:00-02:00/,
    ],
    ['cron(30 2 L * ? *)', 'Europe/Berlin', /spring-forward night 2030-03-31 /],
    [
      'at(2027-03-28T02:30:00)',
      'Europe/Berlin',
      /names 2027-03-28 02:30, a time that does not exist in Europe\/Berlin/,
    ],
  ])('refuses %s in %s', (expression, timezone, reason) => {
    const problems = problemsAt((c) => {
      c.schedules[1].expression = expression;
      c.schedules[1].timezone = timezone;
    });
    expect(problems.find((p) => p.startsWith('schedules[1].expression: schedule "monthly-drill"'))).toMatch(
      reason,
    );
  });

  it.each([
    ['cron(30 1 * * ? *)', 'Europe/Berlin', 'before the skipped hour'],
    ['cron(30 3 * * ? *)', 'Europe/Berlin', 'after it'],
    ['cron(30 2 * * ? *)', 'UTC', 'UTC has no daylight saving time'],
    ['cron(30 2 * * ? *)', 'Asia/Tokyo', 'a zone without daylight saving time'],
    [
      'cron(0 * * * ? *)',
      'Europe/Berlin',
      'hourly: 01:00 and 03:00 are an hour apart that night, nothing is lost',
    ],
    ['cron(30 2 ? 10 SUN *)', 'Europe/Berlin', 'the repeated fall-back hour runs once (not refused)'],
    ['rate(1 day)', 'Europe/Berlin', 'a rate counts 24-hour days'],
  ])('accepts %s in %s (%s)', (expression, timezone) => {
    expect(
      problemsAt((c) => {
        c.schedules[1].expression = expression;
        c.schedules[1].timezone = timezone;
      }),
    ).toEqual([]);
  });

  it('refuses backup schedules whose largest interval exceeds rpoHours, naming the schedule, the gap and the fix', () => {
    const problems = problemsAt((c) => {
      c.schedules[0].expression = 'cron(0 2 ? * SUN *)';
    });
    expect(problems).toEqual([
      expect.stringMatching(
        /^rpoHours: is 26, but the backup schedule "nightly" \(cron\(0 2 \? \* SUN \*\), UTC\) leaves 168 hours between backups \(from .* UTC to .* UTC\) of infrahub-prod, infrahub-lab: the NoRecentBackup alarm would fire on a healthy schedule; back up more often or raise rpoHours to at least 168$/,
      ),
    ]);
    const rate = problemsAt((c) => {
      c.schedules[0].expression = 'rate(2 days)';
    });
    expect(rate[0]).toMatch(/^rpoHours: is 26, but .* leaves 48 hours between backups of infrahub-prod/);
  });

  it('counts the fall-back night: a nightly 02:30 Berlin backup is 25 h apart once a year, refused under a 24 h RPO', () => {
    const problems = problemsAt((c) => {
      c.schedules[0].expression = 'cron(30 3 * * ? *)';
      c.schedules[0].timezone = 'Europe/Berlin';
      c.rpoHours = 24;
    });
    expect(problems[0]).toMatch(/^rpoHours: is 24, .* leaves 25 hours between backups/);
  });

  it('accepts schedules that cover a target together, a raised rpoHours, and leaves drills and disabled schedules out of the RPO', () => {
    expect(
      problemsAt((c) => {
        c.schedules[0].expression = 'cron(0 2 ? * MON-FRI *)';
        c.schedules.push({
          name: 'weekend',
          kind: 'backup',
          expression: 'cron(0 2 ? * SAT,SUN *)',
          targets: '*',
        });
        c.schedules.push({
          name: 'old-weekly',
          kind: 'backup',
          expression: 'cron(0 2 ? * SUN *)',
          targets: '*',
          enabled: false,
        });
      }),
    ).toEqual([]);
    expect(
      problemsAt((c) => {
        c.schedules[0].expression = 'cron(0 2 ? * SUN *)';
        c.rpoHours = 170;
      }),
    ).toEqual([]);
  });

  it('names only the target a partial schedule leaves uncovered for too long', () => {
    const problems = problemsAt((c) => {
      c.schedules[0].targets = ['infrahub-prod'];
      c.schedules.push({
        name: 'lab',
        kind: 'backup',
        expression: 'cron(0 2 1 * ? *)',
        targets: ['infrahub-lab'],
      });
    });
    expect(problems).toEqual([
      expect.stringMatching(
        /"lab" \(cron\(0 2 1 \* \? \*\), UTC\) leaves 7\d\d hours between backups .* of infrahub-lab:/,
      ),
    ]);
  });

  it('skips the time checks when told to (a deployed function re-reading its bundled configuration)', () => {
    expect(problemsAt(nightly('cron(30 2 * * ? *)', 'Europe/Berlin'), null as unknown as Date)).toEqual([]);
  });
});

// Issue 12, item 16: a fleet no deployment can hold is refused, naming the bound and why.
describe('deployment configuration: fleet size', () => {
  // biome-ignore lint/suspicious/noExplicitAny: the example's target, copied under other names
  const fleet = (n: number) => (c: any) => {
    const [prod] = c.targets;
    c.targets = Array.from({ length: n }, (_, i) => ({
      ...prod,
      name: `infrahub-${i}`,
      infrahub: { ...prod.infrahub, tokenSecret: `infrahub-${i}/api-token` },
    }));
    c.schedules = [{ name: 'nightly', kind: 'backup', expression: 'cron(0 2 * * ? *)', targets: '*' }];
    // At about 15 minutes a target, 1,000 targets fit the backup's 12 hours at 21 at once or more.
    c.maxConcurrency = 40;
  };

  it.each([10_000, MAX_TARGETS + 1])(
    'refuses %i targets, naming the field, the bound and the reason',
    (n) => {
      const problems = problemsOf(exampleWith(fleet(n)));
      expect(problems).toContainEqual(
        expect.stringMatching(
          new RegExp(
            `^targets: configures ${n} targets; one deployment holds at most ${MAX_TARGETS}: the largest fleet the backup state machine is tested with .*Split the fleet`,
          ),
        ),
      );
    },
  );

  it(`accepts ${MAX_TARGETS} targets with a drill schedule over all of them (one schedule), and refuses schedules past 500 resources`, () => {
    const withDrills = exampleWith((c) => {
      fleet(MAX_TARGETS)(c);
      c.secretsAccess = { tag: { key: 'infrahub-backup', value: 'fleet' } };
      c.schedules.push({
        name: 'drills',
        kind: 'restore-drill',
        expression: 'cron(0 6 1 * ? *)',
        targets: '*',
      });
    });
    expect(parseDeploymentConfig(withDrills, 'test').targets).toHaveLength(MAX_TARGETS);
    const problems = problemsOf(
      exampleWith((c) => {
        fleet(3)(c);
        for (let i = 0; i < 420; i++)
          c.schedules.push({
            name: `drill-${i}`,
            kind: 'restore-drill',
            expression: 'cron(0 6 1 * ? *)',
            targets: '*',
          });
      }),
    );
    expect(problems).toEqual([
      expect.stringMatching(
        /^schedules: would make the stack hold about 5\d\d resources, more than CloudFormation's 500 per stack \(3 targets, 421 schedules, .*fewer schedules/,
      ),
    ]);
  });

  it('refuses a fleet whose listed secrets pass IAM quotas of one role, naming secretsAccess.tag, and accepts it tagged', () => {
    const problems = problemsOf(exampleWith(fleet(MAX_TARGETS)));
    expect(problems).toContainEqual(
      expect.stringMatching(
        new RegExp(
          `^secretsAccess: the Preflight Lambda would list ${MAX_TARGETS} secrets and 0 customer-managed keys \\(secretsKmsKeyArns\\) in its role, which needs \\d+ managed policies of its own, \\d+ with the two AWS-managed Lambda policies: IAM attaches at most 10 to a role.*secretsAccess\\.tag.*set "account"`,
        ),
      ),
    );
    expect(() =>
      parseDeploymentConfig(
        exampleWith((c) => {
          fleet(MAX_TARGETS)(c);
          c.secretsAccess = { tag: { key: 'infrahub-backup', value: 'fleet' } };
        }),
        'test',
      ),
    ).not.toThrow();
    expect(
      problemsOf(
        exampleWith((c) => {
          fleet(3)(c);
          c.secretsAccess = { tag: { key: 'aws:owner', value: 'x' } };
        }),
      ),
    ).toEqual([expect.stringMatching(/^secretsAccess\.tag\.key: must not start with "aws:"/)]);
  });

  it('names at most 10 of the known targets when a schedule names an unknown one', () => {
    const problems = problemsOf(
      exampleWith((c) => {
        fleet(MAX_TARGETS)(c);
        c.secretsAccess = { tag: { key: 'infrahub-backup', value: 'fleet' } };
        c.schedules[0].targets = ['infrahub-nowhere'];
      }),
    );
    expect(problems).toEqual([
      'schedules[0].targets[0]: target "infrahub-nowhere" is not configured (known: infrahub-0, infrahub-1, infrahub-2, infrahub-3, infrahub-4, infrahub-5, infrahub-6, infrahub-7, infrahub-8, infrahub-9 and 990 more)',
    ]);
  });

  it('refuses secret names whose ARNs CDK would size wrongly or no runner execution role could hold', () => {
    const long = `infrahub/${'n'.repeat(100)}`;
    const problems = problemsOf(exampleWith((c) => (c.targets[0].postgres.credentialsSecret = long)));
    expect(problems).toEqual([
      expect.stringMatching(
        /^targets\[0\]: secret "infrahub\/n{31}…" \(109 characters\) makes an ARN longer than the 150 characters CDK assumes .*set "account"/,
      ),
    ]);
    expect(() =>
      parseDeploymentConfig(
        exampleWith((c) => {
          c.account = '123456789012';
          c.targets[0].postgres.credentialsSecret = long;
        }),
        'test',
      ),
    ).not.toThrow();
    // 50 targets (one runner group) whose three secrets have 500-character names.
    const huge = problemsOf(
      exampleWith((c) => {
        fleet(50)(c);
        c.account = '123456789012';
        c.targets = c.targets.map((t: { name: string; neo4j: object; postgres: object }, i: number) => ({
          ...t,
          neo4j: { ...t.neo4j, credentialsSecret: `${'a'.repeat(490)}/${i}` },
          postgres: {
            ...t.postgres,
            credentialsSecret: `${'b'.repeat(490)}/${i}`,
            tls: { mode: 'verify-full', caSecret: `${'c'.repeat(490)}/${i}` },
          },
        }));
      }),
    );
    expect(huge).toContainEqual(
      expect.stringMatching(
        /^targets\[0\]: targets 1-50 \(one runner execution role\) list \d+ secrets and keys, which need \d+ managed policies/,
      ),
    );
  });

  it("lists each Lambda's secrets and only the keys of the targets it reads (Neo4jReady: Community)", () => {
    const A = 'arn:aws:kms:eu-west-1:123456789012:key/11111111-1111-4111-8111-111111111111';
    const B = 'arn:aws:kms:eu-west-1:123456789012:key/22222222-2222-4222-8222-222222222222';
    const byArn = 'arn:aws:secretsmanager:eu-central-1:999999999999:secret:elsewhere/token-AbCdEf';
    const config = parseDeploymentConfig(
      exampleWith((c) => {
        c.targets[0].secretsKmsKeyArns = [A];
        c.targets[1].secretsKmsKeyArns = [B];
        c.targets[1].infrahub.tokenSecret = byArn;
      }),
      'test',
    );
    const community = config.targets.filter((t) => t.neo4j.dbms).flatMap((t) => t.secretsKmsKeyArns);
    const listed = lambdaListedArns(config);
    expect(listed.Preflight.keys.sort()).toEqual([A, B].sort());
    expect(listed.Neo4jReady.keys).toEqual(community);
    expect(listed.Preflight.secrets).toContain(byArn);
    // With the tag, only the secret given by complete ARN stays listed (it may be elsewhere).
    const tagged = lambdaListedArns({ ...config, secretsAccess: { tag: { key: 'k', value: 'v' } } });
    expect(tagged.Preflight.secrets).toEqual([byArn]);
  });

  it('takes maxConcurrency on restore-drill schedules only', () => {
    const drill = { name: 'drills', kind: 'restore-drill', expression: 'cron(0 6 1 * ? *)', targets: '*' };
    const parsed = parseDeploymentConfig(
      exampleWith((c) => c.schedules.push({ ...drill, maxConcurrency: 40 })),
      'test',
    );
    expect(parsed.schedules.find((s) => s.name === 'drills')).toMatchObject({ maxConcurrency: 40 });
    expect(problemsOf(exampleWith((c) => c.schedules.push({ ...drill, maxConcurrency: 41 })))).toEqual([
      expect.stringMatching(/^schedules\[\d\]\.maxConcurrency: /),
    ]);
    expect(problemsOf(exampleWith((c) => (c.schedules[0].maxConcurrency = 8)))).toEqual([
      "schedules[0].maxConcurrency: is for restore-drill schedules only: a backup runs the deployment's maxConcurrency targets at once",
    ]);
  });

  it(`an execution input names at most ${MAX_TARGETS} targets`, () => {
    const config = parseDeploymentConfig(exampleWith(fleet(3)), 'test');
    const names = Array.from({ length: MAX_TARGETS + 1 }, (_, i) => `infrahub-${i}`);
    expect(() => planBackup({ targets: names }, config, new Date())).toThrow(
      new RegExp(`targets: must name at most ${MAX_TARGETS} targets`),
    );
  });
});

// Issue 12 review: calendar checks must not stop an operator from listing or restoring backups.
describe('schedule calendar problems: warnings for the operator, refusals for cdk synth', () => {
  const berlin0230 = () => {
    const dir = testTempDir('cfg-warn-');
    const file = join(dir, 'berlin.json');
    writeFileSync(
      file,
      JSON.stringify(
        exampleWith((c) => {
          c.schedules[0].expression = 'cron(30 2 * * ? *)';
          c.schedules[0].timezone = 'Europe/Berlin';
        }),
      ),
    );
    return file;
  };

  it('the CDK app (no onScheduleProblems) refuses; the loader with onScheduleProblems hands them over and returns the configuration', () => {
    const file = berlin0230();
    const from = { scheduleCheckFrom: new Date('2026-11-30T13:00:37.123Z') };
    expect(() => loadDeploymentConfigFile(file, from)).toThrow(/spring-forward night/);
    const seen: string[] = [];
    const config = loadDeploymentConfigFile(file, { ...from, onScheduleProblems: (p) => seen.push(...p) });
    expect(config.schedules[0]?.timezone).toBe('Europe/Berlin');
    expect(seen[0]).toMatch(/^schedules\[0\]\.expression: .*spring-forward night/);
    // Schema problems still refuse, whatever the option.
    const bad = join(testTempDir('cfg-bad-'), 'bad.json');
    writeFileSync(bad, JSON.stringify(exampleWith((c) => (c.rpoHours = 0))));
    expect(() => loadDeploymentConfigFile(bad, { onScheduleProblems: () => {} })).toThrow(ConfigError);
  });

  it('the operator CLI loads such a configuration and prints each problem as a warning on standard error', async () => {
    const { resolveSettings } = await import('../../cli/infrahub-backup.js');
    const file = berlin0230();
    const warnings: string[] = [];
    const settings = resolveSettings({ config: file }, {}, (l) => warnings.push(l));
    expect(settings.region).toBe('eu-west-1');
    expect(warnings[0]).toMatch(
      new RegExp(
        `^warning: ${file.replace(/[.]/g, '\\.')}: schedules\\[0\\]\\.expression: .*02:30 in Europe/Berlin`,
      ),
    );
  });
});

// Issue 12 review: a target selection that is neither "*" nor a list says what is expected, not
// zod's "Invalid input".
describe('target selections: "*" or a list of names, said so', () => {
  const expected =
    /must be "\*" \(every configured target\) or a list of target names such as \["infrahub-prod"\], got /;
  it.each([
    [null, 'null'],
    ['infrahub-lab', 'the string "infrahub-lab"'],
    [7, 'a number'],
    [{ name: 'infrahub-lab' }, 'an object'],
    ['x'.repeat(5000), 'a string of 5000 characters'],
  ])('execution input targets %j', (targets, got) => {
    const config = parseDeploymentConfig(example(), 'test', { scheduleCheckFrom: null });
    let message = '';
    try {
      planBackup({ targets }, config, new Date('2026-11-30T13:00:37.123Z'));
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(new RegExp(`targets: ${expected.source}${got.replace(/[()"]/g, '\\$&')}$`, 'm'));
    expect(message.length).toBeLessThan(400);
  });

  it.each([
    [null, 'null'],
    ['infrahub-prod', 'the string "infrahub-prod"'],
  ])('schedules[0].targets %j in the configuration', (targets, got) => {
    const problems = problemsOf(exampleWith((c) => (c.schedules[0].targets = targets)));
    expect(problems).toEqual([`schedules[0].targets: ${expected.source.replace(/\\/g, '')}${got}`]);
  });
});

// Issue 12 review, items 5-8: schedules that never fire, white space in a cron, IPv6 hosts, lengths,
// time zone spelling.
describe('schedules, hosts and lengths: the review inputs', () => {
  const from = new Date('2026-11-30T13:00:37.123Z');
  // biome-ignore lint/suspicious/noExplicitAny: each case edits arbitrary JSON on purpose
  const problemsAt = (edit: (c: any) => void): string[] => {
    try {
      parseDeploymentConfig(exampleWith(edit), 'test', { scheduleCheckFrom: from });
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return [...(err as ConfigError).problems];
    }
    return [];
  };
  const drill =
    (expression: string, timezone: string) =>
    // biome-ignore lint/suspicious/noExplicitAny: arbitrary JSON
    (c: any) => {
      c.schedules[1].expression = expression;
      c.schedules[1].timezone = timezone;
    };

  it.each([
    [
      'cron(30 2 ? 3 1L *)',
      'Europe/Berlin',
      /never fires in Europe\/Berlin in the next 8 years \(every time it names, such as 2027-03-28 02:30, falls into the hour the clocks skip/,
    ],
    [
      'cron(30 2 ? 3 SUN#5 *)',
      'Europe/Berlin',
      /never fires in Europe\/Berlin in the next 8 years \(every time it names/,
    ],
    [
      'cron(0 2 * * ? 2020)',
      'UTC',
      /never fires in UTC in the next 8 years \(its dates are past or never occur/,
    ],
    [
      'cron(0 2 31 2 ? *)',
      'UTC',
      /never fires in UTC in the next 8 years \(its dates are past or never occur/,
    ],
    ['at(2020-01-01T02:00:00)', 'UTC', /is in the past in UTC \(checked from 2026-11-30 13:00 UTC\)/],
  ])('refuses %s in %s: it never fires', (expression, timezone, reason) => {
    const problems = problemsAt(drill(expression, timezone));
    expect(problems).toEqual([expect.stringMatching(reason)]);
    expect(problems.join('\n')).not.toMatch(/Infinity/);
  });

  it('a backup schedule that never fires is refused once, not as "Infinity hours" under rpoHours', () => {
    const problems = problemsAt((c) => {
      c.schedules[0].expression = 'cron(0 2 31 2 ? *)';
    });
    expect(problems).toEqual([expect.stringMatching(/^schedules\[0\]\.expression: .*never fires/)]);
  });

  it('accepts any white space between cron fields and hands Scheduler single spaces', () => {
    const config = parseDeploymentConfig(exampleWith(drill('cron(0  6 ?\t* 2#1 * )', 'UTC')), 'test', {
      scheduleCheckFrom: from,
    });
    expect(config.schedules[1]?.expression).toBe('cron(0 6 ? * 2#1 *)');
  });

  it('refuses an expression longer than Scheduler takes, quoting only an excerpt', () => {
    const long = `cron(0 2 * * ? ${'1,'.repeat(200)}2030)`;
    const problems = problemsAt(drill(long, 'UTC'));
    expect(problems[0]).toMatch(/is \d+ characters long; EventBridge Scheduler takes at most 256/);
    expect(problems[0]?.length).toBeLessThan(400);
  });

  it.each([
    ['europe/berlin', 'Europe/Berlin'],
    ['utc', 'UTC'],
    ['EUROPE/LONDON', 'Europe/London'],
  ])('writes the time zone %s in its IANA spelling %s', (zone, spelled) => {
    const config = parseDeploymentConfig(exampleWith(drill('cron(0 6 ? * 2#1 *)', zone)), 'test', {
      scheduleCheckFrom: from,
    });
    expect(config.schedules[1]?.timezone).toBe(spelled);
  });

  it('accepts IPv6 literals as hosts, and still refuses a host with a port', () => {
    expect(problemsAt((c) => (c.targets[0].neo4j.host = 'fd00::1'))).toEqual([]);
    expect(problemsAt((c) => (c.targets[0].postgres.host = '::1'))).toEqual([]);
    expect(problemsAt((c) => (c.targets[0].neo4j.host = 'neo4j:7687'))).toEqual([
      expect.stringMatching(/^targets\[0\]\.neo4j\.host: must be a host name, IPv4 address or IPv6 address/),
    ]);
  });

  it('bounds artifacts.prefix (S3 keys) and artifacts.path (PATH_MAX), saying the length', () => {
    const s3 = example().targets as Array<{ artifacts: { type: string } }>;
    const s3Index = s3.findIndex((t) => t.artifacts.type === 's3');
    const pathIndex = s3.findIndex((t) => t.artifacts.type === 'path');
    const prefix = problemsAt((c) => (c.targets[s3Index].artifacts.prefix = `${'a'.repeat(2000)}/`));
    expect(prefix).toEqual([
      expect.stringMatching(
        /artifacts\.prefix: is 2001 characters long; at most 512: S3 keys hold at most 1024 bytes/,
      ),
    ]);
    const path = problemsAt((c) => (c.targets[pathIndex].artifacts.path = `/${'a'.repeat(5000)}`));
    expect(path).toEqual([
      expect.stringMatching(/artifacts\.path: is 5001 characters long; a path holds at most 3072/),
    ]);
  });
});

// Issue 16, part 6: the wait is the state machine's loop (no longer one Lambda's 900 s), bounded at an
// hour, and its Wait states by the history's budget.
describe('preflight.maxWaitSeconds', () => {
  it('is at most 3600 s, saying why', () => {
    expect(problemsOf(exampleWith((c) => (c.preflight.maxWaitSeconds = 3601)))).toEqual([
      expect.stringMatching(/^preflight\.maxWaitSeconds: must be at most 3600 \(an hour\)/),
    ]);
    const config = parseDeploymentConfig(
      exampleWith((c) => (c.preflight.maxWaitSeconds = 3600)),
      'test',
      { scheduleCheckFrom: null },
    );
    expect(config.preflight).toMatchObject({ maxWaitSeconds: 3600, pollIntervalSeconds: 15 });
  });

  it('refuses a loop of more than 240 waits (the history budget), naming both fields and the values that fit', () => {
    expect(
      problemsOf(
        exampleWith((c) => {
          c.preflight.maxWaitSeconds = 3600;
          c.preflight.pollIntervalSeconds = 10;
        }),
      ),
    ).toEqual([
      'preflight.pollIntervalSeconds: with maxWaitSeconds 3600, the preflight gate would check Infrahub up to 361 times ' +
        "(maxWaitSeconds / pollIntervalSeconds + 1), each wait adding 9 events to the execution's history; at most 240 waits are allowed: " +
        'raise preflight.pollIntervalSeconds to at least 15 or lower preflight.maxWaitSeconds to at most 2400',
    ]);
    // 240 waits exactly fit.
    const fits = parseDeploymentConfig(
      exampleWith((c) => {
        c.preflight.maxWaitSeconds = 2400;
        c.preflight.pollIntervalSeconds = 10;
      }),
      'test',
      { scheduleCheckFrom: null },
    );
    expect(fits.preflight).toMatchObject({ maxWaitSeconds: 2400, pollIntervalSeconds: 10 });
  });
});

// Issue 12 review, item 7: an unknown key is quoted as a bounded excerpt.
describe('unknown keys in an execution input', () => {
  it('are quoted cut at 40 characters with their length, at most five of them', () => {
    const config = parseDeploymentConfig(example(), 'test', { scheduleCheckFrom: null });
    const input: Record<string, boolean> = { ['k'.repeat(300_000)]: true };
    for (let i = 0; i < 7; i++) input[`extra${i}`] = true;
    let message = '';
    try {
      planBackup(input, config, new Date('2026-11-30T13:00:37.123Z'));
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(
      /\(root\): has unknown keys "k{40}…" \(300000 characters\), "extra0", "extra1", "extra2", "extra3" and 3 more$/m,
    );
    expect(message.length).toBeLessThan(300);
  });
});

// Issue 12 review, item 9: a backup schedule's skipped run is judged by the backups covering the
// target together (rpoHours), not alone.
describe('daylight-saving skips of backup schedules and rpoHours', () => {
  const from = new Date('2026-11-30T13:00:37.123Z');
  // biome-ignore lint/suspicious/noExplicitAny: each case edits arbitrary JSON on purpose
  const problemsAt = (edit: (c: any) => void): string[] => {
    try {
      parseDeploymentConfig(exampleWith(edit), 'test', { scheduleCheckFrom: from });
    } catch (err) {
      return [...(err as ConfigError).problems];
    }
    return [];
  };
  it('accepts 02:30 and 14:30 in Berlin together: the skipped 02:30 leaves 23 h between backups, within rpoHours 26', () => {
    expect(
      problemsAt((c) => {
        c.schedules[0].expression = 'cron(30 2 * * ? *)';
        c.schedules[0].timezone = 'Europe/Berlin';
        c.schedules.push({
          name: 'afternoon',
          kind: 'backup',
          expression: 'cron(30 14 * * ? *)',
          timezone: 'Europe/Berlin',
          targets: '*',
        });
      }),
    ).toEqual([]);
  });
  it('refuses them when rpoHours is 12: the skip then names the schedule and the RPO gap', () => {
    const problems = problemsAt((c) => {
      c.schedules[0].expression = 'cron(30 2 * * ? *)';
      c.schedules[0].timezone = 'Europe/Berlin';
      c.rpoHours = 12;
      c.schedules.push({
        name: 'afternoon',
        kind: 'backup',
        expression: 'cron(30 14 * * ? *)',
        timezone: 'Europe/Berlin',
        targets: '*',
      });
    });
    expect(problems).toEqual([
      expect.stringMatching(/^schedules\[0\]\.expression: .*spring-forward night/),
      expect.stringMatching(
        /^rpoHours: is 12, but the backup schedules "nightly" .* and "afternoon" .* leave 23 hours between backups \(from 2027-03-27 13:30 UTC to 2027-03-28 12:30 UTC\)/,
      ),
    ]);
  });
  it('still refuses a restore drill whose run is skipped', () => {
    expect(
      problemsAt((c) => {
        c.schedules[1].expression = 'cron(30 2 ? * SUN *)';
        c.schedules[1].timezone = 'Europe/Berlin';
      }),
    ).toEqual([expect.stringMatching(/^schedules\[1\]\.expression: .*spring-forward night/)]);
  });
});

// Issue 15: the Neo4j Enterprise keys. targets[0] of the example is Enterprise, targets[1] Community.
describe('deployment configuration: Neo4j Enterprise keys (issue 15)', () => {
  const enterprise = (edit: (neo4j: Record<string, unknown>) => void) =>
    exampleWith((c) => edit(c.targets[0].neo4j));

  it('requires the licence for Enterprise and refuses Enterprise-only keys on Community', () => {
    expect(problemsOf(enterprise((n) => delete n.licence))).toEqual([
      expect.stringMatching(/^targets\[0\]\.neo4j\.licence: is required for an Enterprise target/),
    ]);
    expect(problemsOf(enterprise((n) => (n.licence = 'free')))).toEqual([
      expect.stringMatching(/^targets\[0\]\.neo4j\.licence: /),
    ]);
    expect(
      problemsOf(
        exampleWith((c) => {
          c.targets[1].neo4j.licence = 'commercial';
          c.targets[1].neo4j.backupFrom = ['a.internal:6362'];
          c.targets[1].neo4j.seed = { serverRoleArns: ['arn:aws:iam::123456789012:role/neo4j-server'] };
        }),
      ),
    ).toEqual([
      expect.stringMatching(/^targets\[1\]\.neo4j\.licence: is for Enterprise targets only/),
      expect.stringMatching(/^targets\[1\]\.neo4j\.backupFrom: is for Enterprise targets only/),
      expect.stringMatching(/^targets\[1\]\.neo4j\.seed: is for Enterprise targets only/),
    ]);
    // Any seed or backupChain setting on Community, not only server roles: nothing would read it.
    for (const [key, value] of [
      ['seed', { onlineTimeoutSeconds: 60 }],
      ['seed', { rehearse: false }],
      ['seed', {}],
      ['backupChain', { maxDifferentials: 2 }],
    ] as const)
      expect(problemsOf(exampleWith((c) => (c.targets[1].neo4j[key] = value)))).toEqual([
        expect.stringMatching(new RegExp(`^targets\\[1\\]\\.neo4j\\.${key}: is for Enterprise targets only`)),
      ]);
    const community = parseDeploymentConfig(example(), 'test').targets[1]?.neo4j;
    expect(community?.edition).toBe('community');
    expect(community?.seed).toBeUndefined();
    // The parsed configuration (bundled beside the Lambdas) parses again to itself.
    const parsed = parseDeploymentConfig(example(), 'test');
    expect(parseDeploymentConfig(JSON.parse(JSON.stringify(parsed)), 'again')).toEqual(parsed);
    expect(parsed.targets[0]?.neo4j.seed).toEqual({
      serverRoleArns: [],
      onlineTimeoutSeconds: 3600,
      rehearse: true,
    });
  });

  it.each([
    ['an empty name', 'arn:aws:iam::123456789012:role/'],
    ['a name of slashes', 'arn:aws:iam::123456789012:role//'],
    ['an empty path segment', 'arn:aws:iam::123456789012:role/a//b'],
    ['a trailing slash', 'arn:aws:iam::123456789012:role/team/'],
    ['a name over 64 characters', `arn:aws:iam::123456789012:role/${'r'.repeat(65)}`],
    ['a path over 512 characters', `arn:aws:iam::123456789012:role/${'p/'.repeat(256)}name`],
  ])('refuses a seed server role ARN with %s', (_, arn) => {
    expect(problemsOf(enterprise((n) => (n.seed = { serverRoleArns: [arn] })))).toEqual([
      expect.stringMatching(
        /^targets\[0\]\.neo4j\.seed\.serverRoleArns\[0\]: (must be an IAM role ARN|has a path of \d+ characters; IAM allows 512)/,
      ),
    ]);
  });

  it('accepts a seed server role ARN with a path', () => {
    const arn = 'arn:aws:iam::123456789012:role/service-role/neo4j/server+1@x';
    const config = parseDeploymentConfig(
      enterprise((n) => (n.seed = { serverRoleArns: [arn] })),
      'test',
    );
    expect(config.targets[0]?.neo4j.seed?.serverRoleArns).toEqual([arn]);
  });

  it.each([
    ['999.1.1.1', 'ends in a number'],
    ['010.0.0.1', 'ends in a number'],
    ['127.1', 'ends in a number'],
    ['0x7f.0.0.1', 'ends in a number'],
    ['10.0.0.256', 'ends in a number'],
    ['neo4j.internal.', 'ends with "."'],
    ['::ffff:10.0.0.5', 'IPv4-mapped IPv6 address: write the IPv4 address it maps, 10.0.0.5'],
    ['fe80::1%eth0', 'has a zone id (%eth0)'],
  ])('refuses the host %s, which would name another host than it seems (%s)', (badHost, why) => {
    expect(problemsOf(exampleWith((c) => (c.targets[0].neo4j.host = badHost)))).toEqual([
      expect.stringContaining(`targets[0].neo4j.host: `),
    ]);
    expect(problemsOf(exampleWith((c) => (c.targets[0].neo4j.host = badHost)))[0]).toContain(why);
    expect(problemsOf(exampleWith((c) => (c.targets[0].postgres.host = badHost)))[0]).toMatch(
      /^targets\[0\]\.postgres\.host: /,
    );
    const member = badHost.includes(':') ? `[${badHost}]:6362` : `${badHost}:6362`;
    const [problem] = problemsOf(enterprise((n) => (n.backupFrom = [member])));
    expect(problem).toMatch(/^targets\[0\]\.neo4j\.backupFrom\[0\]: has the host /);
    expect(problem).toContain(why);
  });

  it('accepts dotted-decimal IPv4, host names with numbers inside and IPv6 hosts', () => {
    for (const good of [
      '10.0.0.5',
      '255.255.255.255',
      'neo4j-1.internal',
      '1.neo4j.internal',
      'fd00::1',
      '::1',
    ])
      expect(
        parseDeploymentConfig(
          exampleWith((c) => (c.targets[0].neo4j.host = good)),
          'test',
        ).targets[0]?.neo4j.host,
      ).toBe(good);
  });

  it.each([
    ['a scheme', 'bolt://a.internal:6362'],
    ['no port', 'a.internal'],
    ['port 0', 'a.internal:0'],
    ['a port too high', 'a.internal:65536'],
    ['an IPv6 address without brackets', 'fd00::1:6362'],
    ['brackets around no IPv6 address', '[:]:6362'],
    ['brackets around a host name', '[neo4j]:6362'],
    ['an empty label', 'a..internal:6362'],
    ['an IPv6 zone id, which --from cannot carry', '[fe80::1%eth0]:6362'],
  ])('refuses a backupFrom member with %s (%s)', (_, member) => {
    expect(problemsOf(enterprise((n) => (n.backupFrom = [member])))).toEqual([
      expect.stringMatching(/^targets\[0\]\.neo4j\.backupFrom\[0\]: (must be host:port|has the host)/),
    ]);
  });

  it('accepts host names, IPv4 and bracketed IPv6 members, and refuses one named twice in any case', () => {
    const members = ['core-1.internal:6362', '10.0.0.7:6362', '[fd00::1]:6362'];
    const config = parseDeploymentConfig(
      enterprise((n) => (n.backupFrom = members)),
      'test',
    );
    expect(config.targets[0]?.neo4j.backupFrom).toEqual(members);
    expect(
      problemsOf(enterprise((n) => (n.backupFrom = ['Core-1.internal:6362', 'core-1.internal:6362']))),
    ).toEqual(['targets[0].neo4j.backupFrom: must not name a member twice (also not in another spelling)']);
    expect(problemsOf(enterprise((n) => (n.backupFrom = ['[fd00::1]:6362', '[FD00:0::1]:6362'])))).toEqual([
      'targets[0].neo4j.backupFrom: must not name a member twice (also not in another spelling)',
    ]);
    expect(problemsOf(enterprise((n) => (n.backupFrom = [])))).toEqual([
      'targets[0].neo4j.backupFrom: must name at least one member',
    ]);
  });

  it('refuses Bolt TLS settings that cannot work: ca with caSecret, a CA without verification', () => {
    expect(
      problemsOf(enterprise((n) => (n.tls = { mode: 'verify-full', ca: '/etc/ca.pem', caSecret: 'x/ca' }))),
    ).toEqual(['targets[0].neo4j.tls.caSecret: give either ca or caSecret, not both']);
    expect(problemsOf(enterprise((n) => (n.tls = { mode: 'require', caSecret: 'x/ca' })))).toEqual([
      expect.stringMatching(/^targets\[0\]\.neo4j\.tls\.caSecret: is used by mode "verify-full" only/),
    ]);
    // The seeding bound fits the restore's 12 hours twice (rehearsal, then the live database).
    expect(problemsOf(enterprise((n) => (n.seed = { onlineTimeoutSeconds: 18_001 })))).toEqual([
      expect.stringMatching(/^targets\[0\]\.neo4j\.seed\.onlineTimeoutSeconds: /),
    ]);
  });
});
