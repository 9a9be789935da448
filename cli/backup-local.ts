/**
 * `npm run backup:local -- --config <file> --endpoint <url> --bucket <name> [--input <json>]`
 * (`npm run restore:local` and `npm run drill:local` are the same with `--machine restore|drill`)
 *
 * Runs the backup, restore or drill state machine, synthesized from the CDK app for <file>, on this
 * machine against the targets the file names. AWS APIs (S3, Secrets Manager for the targets' credentials, SNS,
 * EventBridge) are those of <endpoint>, an AWS-compatible server such as moto or LocalStack; the
 * runner uses the tools on this machine (PATH, or PG_BINDIR / NEO4J_ADMIN / NEO4J_HOME). A Community
 * target's DBMS is stopped and started with the commands in NEO4J_STOP_COMMAND and NEO4J_START_COMMAND
 * (for example "systemctl stop neo4j"); without them a Community database backup is refused.
 *
 * Exit codes: 0 the execution succeeded (every target backed up; the restore or drill passed); 1 it
 * failed (the cause is printed); 2 bad arguments or configuration, including an --input the state
 * machine refuses (its execution fails InvalidInput).
 */
import { parseArgs } from 'node:util';
import { loadDeploymentConfigFile } from '../core/config/load.js';
import { ConfigError, ErrorNames } from '../core/errors.js';
import { IDENTIFIER_KEYS, redactText, redactValue } from '../core/redact.js';
import { runLocalExecution } from './local/from-env.js';
import { parseRetryInterval, progressLine } from './local/run-options.js';
import type { MachineKind } from './local/synth.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const USAGE = `usage: npm run backup:local -- --config <file> --endpoint <url> --bucket <name> [--input <json>] [--topic-arn <arn>] [--retry-interval <seconds>]
       npm run restore:local -- (same options; --input is the restore input)
       npm run drill:local -- (same options; --input is the drill input)

Runs a synthesized state machine (backup, restore or restore drill) locally against the targets of <file>.
  --machine    backup (default), restore or drill
  --config     deployment configuration (JSON), as for cdk synth
  --endpoint   AWS-compatible endpoint for S3, Secrets Manager, SNS and EventBridge (for example http://127.0.0.1:5000)
  --bucket     backup bucket at that endpoint (must exist, versioned)
  --input      execution input, as for the Step Functions console (default {})
  --topic-arn  SNS topic for the notices (default: created as infrahub-backup-notices)
  --retry-interval
               seconds before each retry of a failed step, in place of the deployed Retry's pauses
               (default: those, as on AWS: a transient runner error waits up to 60 s, then up to 120 s)

Environment: AWS_REGION and credentials for the endpoint; PG_BINDIR, NEO4J_ADMIN, NEO4J_HOME for the
tools; NEO4J_STOP_COMMAND and NEO4J_START_COMMAND to stop and start a Community DBMS.

example:
  npm run backup:local -- --config config/local.json --endpoint http://127.0.0.1:5000 \\
    --bucket infrahub-backups --input '{"targets": ["infrahub-lab"], "components": ["task-manager-db"]}'
  npm run restore:local -- --config config/local.json --endpoint http://127.0.0.1:5000 \\
    --bucket infrahub-backups --input '{"target": "infrahub-lab", "backupId": "latest", "dryRun": true}'
  npm run drill:local -- --config config/local.json --endpoint http://127.0.0.1:5000 \\
    --bucket infrahub-backups --input '{"target": "infrahub-lab"}'`;

function usage(problem: string): never {
  console.error(`${problem}\n\n${USAGE}`);
  process.exit(2);
}

async function main(): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      options: {
        config: { type: 'string' },
        endpoint: { type: 'string' },
        bucket: { type: 'string' },
        machine: { type: 'string', default: 'backup' },
        input: { type: 'string', default: '{}' },
        'topic-arn': { type: 'string' },
        'retry-interval': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    usage((err as Error).message);
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  for (const required of ['config', 'endpoint', 'bucket'] as const)
    if (!values[required]) usage(`--${required} is required`);
  const machine = String(values.machine);
  if (!['backup', 'restore', 'drill'].includes(machine))
    usage(`--machine must be backup, restore or drill, not "${machine}"`);
  const endpoint = String(values.endpoint);
  let input: unknown;
  try {
    input = JSON.parse(String(values.input));
  } catch (err) {
    usage(`--input is not valid JSON: ${(err as Error).message}`);
  }
  let retryIntervalMs: number | undefined;
  if (typeof values['retry-interval'] === 'string') {
    try {
      retryIntervalMs = parseRetryInterval(values['retry-interval']);
    } catch (err) {
      usage((err as Error).message);
    }
  }
  // Calendar problems of the schedules are warnings here, as in the operator CLI: `cdk synth` refuses them.
  const config = loadDeploymentConfigFile(String(values.config), {
    onScheduleProblems: (problems) => {
      for (const p of problems) console.error(`warning: ${String(values.config)}: ${p}`);
    },
  });
  const t0 = Date.now();
  const result = await runLocalExecution(machine as MachineKind, input, {
    config,
    endpoint,
    bucket: String(values.bucket),
    ...(typeof values['topic-arn'] === 'string' ? { topicArn: values['topic-arn'] } : {}),
    ...(retryIntervalMs !== undefined ? { retryIntervalMs } : {}),
    onEvent: (event) => {
      const line = progressLine(event, (Date.now() - t0) / 1000);
      // Progress on standard error, as the operator CLI prints it: standard output is the result only.
      if (line) console.error(line);
    },
  });
  if (result.status === 'SUCCEEDED') {
    console.log(JSON.stringify(redactValue(result.output, { keep: IDENTIFIER_KEYS }), null, 2));
    return 0;
  }
  // Redacted like every output (core/redact.ts): the secrets this process read, URL userinfo.
  console.error(redactText(`${machine} failed: ${result.error}\n${result.cause}`));
  // The state machine's first state refused the input: bad arguments, as for the flags.
  return result.error === ErrorNames.InvalidInput ? 2 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(redactText(err instanceof Error ? err.message : String(err)));
    process.exit(err instanceof ConfigError ? 2 : 1);
  },
);
