/**
 * A loopback stand-in for the three Step Functions calls a runner makes on its task token
 * (SendTaskHeartbeat, SendTaskSuccess, SendTaskFailure), so the local mode runs the runner's real
 * task-token code (containers/runner/src/task-token.ts) against the same definitions as on AWS.
 * aws-local-stepfunctions 3.0.0 has no task tokens, no callback pattern and no heartbeats (it knows
 * neither `$$.Task.Token` nor HeartbeatSeconds): the local ECS handler (cli/local/backup.ts) gives
 * each run its own token, points the runner's SDK here (AWS_ENDPOINT_URL_SFN) and enforces
 * HeartbeatSeconds and TimeoutSeconds itself.
 *
 * The protocol is the one the SDK speaks to Step Functions (AWS JSON 1.0: POST /, `X-Amz-Target:
 * AWSStepFunctions.<Operation>`, a JSON body; errors as HTTP 400 with `__type` naming the
 * exception), with the API's answers: `{}` on success, TaskTimedOut for a token whose state has
 * ended ("The task token has either expired or the task associated with the token has already been
 * closed"), TaskDoesNotExist for a token never handed out, InvalidToken, InvalidOutput, and the
 * length bounds of `error` (256) and `cause` (32,768) (Step Functions API Reference,
 * SendTaskHeartbeat, SendTaskSuccess, SendTaskFailure: Errors). Listens on 127.0.0.1 only.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What a registered token's state hears from its runner. */
export interface TaskTokenListener {
  heartbeat(): void;
  success(output: string): void;
  failure(error: string, cause: string): void;
}

export class LocalTaskTokenEndpoint {
  private readonly open = new Map<string, TaskTokenListener>();
  private readonly closed = new Set<string>();

  private constructor(
    private readonly server: Server,
    /** http://127.0.0.1:<port> (AWS_ENDPOINT_URL_SFN of the runners). */
    readonly url: string,
  ) {}

  /** Starts the endpoint on a free loopback port. */
  static async start(): Promise<LocalTaskTokenEndpoint> {
    let endpoint: LocalTaskTokenEndpoint | undefined;
    const server = createServer((req, res) => {
      void endpoint?.handle(req, res);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    endpoint = new LocalTaskTokenEndpoint(server, `http://127.0.0.1:${port}`);
    // The endpoint must not keep a CLI process alive on its own.
    server.unref();
    return endpoint;
  }

  /** A state waits on `token` until `end(token)`. */
  register(token: string, listener: TaskTokenListener): void {
    this.open.set(token, listener);
  }

  /** The state ended (its runner answered, or it timed out): later calls on the token get TaskTimedOut. */
  end(token: string): void {
    this.open.delete(token);
    this.closed.add(token);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections?.();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/x-amz-json-1.0' });
      res.end(JSON.stringify(body));
    };
    const fail = (type: string, message: string) => reply(400, { __type: type, message });
    const operation = String(req.headers['x-amz-target'] ?? '').replace(/^AWSStepFunctions\./, '');
    let body: { taskToken?: unknown; output?: unknown; error?: unknown; cause?: unknown };
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
    } catch {
      return fail('SerializationException', 'the request body is not JSON');
    }
    const token = typeof body.taskToken === 'string' ? body.taskToken : '';
    if (!['SendTaskHeartbeat', 'SendTaskSuccess', 'SendTaskFailure'].includes(operation))
      return fail('UnknownOperationException', `${operation || 'no operation'} is not served locally`);
    if (token.length < 1 || token.length > 2048) return fail('InvalidToken', 'the task token is not valid');
    const listener = this.open.get(token);
    if (!listener) {
      if (this.closed.has(token))
        return fail(
          'TaskTimedOut',
          'The task token has either expired or the task associated with the token has already been closed',
        );
      return fail('TaskDoesNotExist', 'no task is waiting on this token');
    }
    if (operation === 'SendTaskHeartbeat') {
      listener.heartbeat();
      return reply(200, {});
    }
    if (operation === 'SendTaskSuccess') {
      const output = typeof body.output === 'string' ? body.output : '';
      try {
        JSON.parse(output);
      } catch {
        return fail('InvalidOutput', 'the output is not JSON');
      }
      this.end(token);
      listener.success(output);
      return reply(200, {});
    }
    const error = typeof body.error === 'string' ? body.error : '';
    const cause = typeof body.cause === 'string' ? body.cause : '';
    if (error.length > 256 || cause.length > 32_768)
      return fail('ValidationException', 'error is at most 256 characters, cause at most 32768');
    this.end(token);
    listener.failure(error, cause);
    return reply(200, {});
  }
}
