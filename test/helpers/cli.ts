/**
 * The operator CLI run in-process (its commander program, cli/infrahub-backup.ts `run`) against a
 * bucket at a local S3 endpoint, as several integration tests drive it.
 */
import { run } from '../../cli/infrahub-backup.js';

/** What one CLI run printed and returned. */
export interface CliResult {
  code: number;
  out: string;
  err: string;
}

/**
 * A function that runs the CLI with `--bucket bucket --endpoint <endpoint()>` before its arguments,
 * collecting standard output and error as lines joined by newlines.
 * @param endpoint read at each run (a local S3 server started in a beforeAll)
 */
export function inProcessCli(
  bucket: string,
  endpoint: () => string,
): (...args: string[]) => Promise<CliResult> {
  return async (...args) => {
    const lines: string[] = [];
    const errors: string[] = [];
    const code = await run(
      ['--bucket', bucket, '--endpoint', endpoint(), ...args],
      (l) => lines.push(l),
      (l) => errors.push(l),
    );
    return { code, out: lines.join('\n'), err: errors.join('\n') };
  };
}
