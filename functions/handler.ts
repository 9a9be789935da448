/**
 * The one wrapper every Lambda handler (each functions/<name>/index.ts) is exported through, also used by the
 * local mode around the same function cores (cli/local/backup.ts), so both behave alike.
 *
 * What a Lambda throws becomes the execution's error and cause (lambda:invoke reports `errorType`
 * from the error's name and `errorMessage` from its message), in the history, the notices and the
 * logs. It passes through core/redact.ts here: every secret value the function has read (the
 * Infrahub token, database passwords) and every URL's userinfo is replaced by `[redacted]`, whatever
 * quoted it (an API that echoes the token in its error body). The error keeps its class and name, so
 * the state machines' Retry and Catch match it as before. Outputs (data for the next state, recorded
 * in the execution history and passed on to notices) have their string leaves redacted too, so an
 * answer from a server that a function returns cannot carry a secret it read; the identifiers we
 * generate or configure (`target`, `backupId`, S3 keys: IDENTIFIER_KEYS) are returned as they are,
 * and a secret equal to such a name is never registered (core/redact.ts).
 * See https://docs.aws.amazon.com/lambda/latest/dg/nodejs-exceptions.html
 *
 * Before the function runs, the invocation's context (the handler's second argument) is given to
 * the process's loggers (core/log.ts addLambdaContext, Powertools Logger's addContext), so every log
 * line of the invocation carries its `function_request_id`, `cold_start` and the function's name,
 * ARN and memory; `xray_trace_id` Powertools reads per line from `_X_AMZN_TRACE_ID`.
 */
import { addLambdaContext } from '../core/log.js';
import { IDENTIFIER_KEYS, redactError, redactValue } from '../core/redact.js';

export function lambdaHandler<A extends unknown[], R>(
  fn: (...args: A) => Promise<R>,
): (...args: A) => Promise<R> {
  return async (...args: A): Promise<R> => {
    addLambdaContext(args[1]);
    try {
      return redactValue(await fn(...args), { keep: IDENTIFIER_KEYS });
    } catch (err) {
      throw redactError(err);
    }
  };
}
