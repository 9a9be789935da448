/**
 * The one wrapper every Lambda handler (each functions/<name>/index.ts) is exported through, also used by the
 * local mode around the same function cores (cli/local/backup.ts), so both behave alike.
 *
 * What a Lambda throws becomes the execution's error and cause (lambda:invoke reports `errorType`
 * from the error's name and `errorMessage` from its message), in the history, the notices and the
 * logs. It passes through core/redact.ts here: every secret value the function has read (the
 * Infrahub token, database passwords) and every URL's userinfo is replaced by `[redacted]`, whatever
 * quoted it (an API that echoes the token in its error body). The error keeps its class and name, so
 * the state machines' Retry and Catch match it as before. Outputs are data for the next state and
 * are returned as they are: redacting them could rewrite a database name that happens to equal a
 * weak password; the messages they carry were redacted where they were made.
 * See https://docs.aws.amazon.com/lambda/latest/dg/nodejs-exceptions.html
 */
import { redactError } from '../core/redact.js';

export function lambdaHandler<A extends unknown[], R>(
  fn: (...args: A) => Promise<R>,
): (...args: A) => Promise<R> {
  return async (...args: A): Promise<R> => {
    try {
      return await fn(...args);
    } catch (err) {
      throw redactError(err);
    }
  };
}
