/** A harness service could not start. The message names the service and the reason. */
export class HarnessStartError extends Error {
  override readonly name = 'HarnessStartError';
  constructor(
    readonly service: string,
    reason: string,
    readonly logTail = '',
  ) {
    super(
      `${service} harness could not start: ${reason}${logTail ? `\n--- last log lines ---\n${logTail}` : ''}`,
    );
  }
}
