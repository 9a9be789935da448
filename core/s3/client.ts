import { S3Client } from '@aws-sdk/client-s3';

/**
 * How long one AWS request may take, and how often it is tried. Every SDK client of the product
 * (S3 in the runner, the Lambdas and the CLI; SNS, EventBridge, Secrets Manager, ECS, Step Functions,
 * CloudWatch) is built with these, so no call waits forever on a server that accepted a connection
 * and never answers.
 *
 * The three timeouts are those of `NodeHttpHandler` (@smithy/node-http-handler, the SDK v3's Node.js
 * HTTP handler; AWS SDK for JavaScript v3 developer guide, "Configuring the request handler"):
 * `connectionTimeout` bounds the TCP/TLS connect, `socketTimeout` bounds inactivity on the socket
 * (no byte sent or received: a hung server, also while a response body streams), `requestTimeout`
 * bounds one attempt from its start until the answer begins (the request body's upload included; a
 * response body streaming afterwards is bounded by `socketTimeout` only, so a large download is not
 * cut), and is made an error (`throwOnRequestTimeout`) rather than the handler's default warning. A timed-out
 * attempt fails with `TimeoutError`, which the SDK's retry strategy treats as transient and retries
 * up to `maxAttempts` attempts in all (first attempt included), with exponential backoff and jitter.
 */
export interface RequestBounds {
  /** Milliseconds to establish a connection (default 5,000). */
  connectionTimeoutMs?: number;
  /** Milliseconds a socket may stay without traffic while a request is under way (default 60,000). */
  socketTimeoutMs?: number;
  /**
   * Milliseconds one attempt may take until the answer begins, the request body included (default 600,000). An UploadPart of 8 MiB (the runner's
   * first part size; parts double every 1,000) over a slow link needs far more than a HEAD: the
   * default allows 8 MiB at 14 KiB/s, while `socketTimeoutMs` catches a server that stopped answering.
   */
  requestTimeoutMs?: number;
  /** Attempts per call, the first included (default 5). */
  maxAttempts?: number;
}

export const DEFAULT_REQUEST_BOUNDS: Required<RequestBounds> = {
  connectionTimeoutMs: 5_000,
  socketTimeoutMs: 60_000,
  requestTimeoutMs: 600_000,
  maxAttempts: 5,
};

/**
 * The Lambdas' bounds: their requests are small (HEAD, GET of a lock or a record, a tag, an SNS
 * publish, an ECS call), and the worst case (3 attempts of 5 s of silence, plus backoff) stays well
 * inside the shortest function timeout (30 s), so a hung AWS endpoint ends in our named error
 * (StorageError, retried by the state machine) rather than the function's timeout.
 */
export const FUNCTION_REQUEST_BOUNDS: Required<RequestBounds> = {
  connectionTimeoutMs: 2_000,
  socketTimeoutMs: 5_000,
  requestTimeoutMs: 10_000,
  maxAttempts: 3,
};

/**
 * Client options that bound every request (see RequestBounds), for any AWS SDK v3 client:
 * `new SNSClient({ ...boundedClientOptions(), ... })`. Unset bounds take the defaults.
 */
export function boundedClientOptions(bounds: RequestBounds = {}) {
  const b = { ...DEFAULT_REQUEST_BOUNDS, ...definedOnly(bounds) };
  return {
    // The SDK builds its NodeHttpHandler from these options (NodeHttpHandler.create).
    requestHandler: {
      connectionTimeout: b.connectionTimeoutMs,
      socketTimeout: b.socketTimeoutMs,
      requestTimeout: b.requestTimeoutMs,
      throwOnRequestTimeout: true,
    },
    maxAttempts: b.maxAttempts,
  };
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export interface S3ClientOptions extends RequestBounds {
  region?: string;
  /** A non-AWS endpoint (the local S3 server); unset on AWS. */
  endpoint?: string;
  /** Path-style addressing, which local servers need. */
  forcePathStyle?: boolean;
  /** Static credentials (tests against a local server); the default provider chain when unset. */
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /**
   * The SDK's retry mode (default 'adaptive'). 'standard' retries each call with exponential backoff
   * and jitter and never slows the client as a whole: for many small calls at a fixed concurrency
   * (the seal's PutObjectTagging, core/backup/seal.ts SEAL_CLIENT), where adaptive mode's rate
   * limiter, cut by 0.7 at every throttled answer, made a burst of 503 SlowDown cost the tagging
   * about twice the time and once a failed call (bench/verify-scale.ts, (e)).
   */
  retryMode?: 'standard' | 'adaptive';
}

/**
 * The product's S3 client: every request bounded (RequestBounds: connect, inactivity and total
 * timeouts; `maxAttempts` attempts), adaptive retries riding out S3 throttling (503 SlowDown) during
 * large parallel uploads unless `retryMode` says otherwise. A call that exhausts its attempts
 * rejects with the SDK's last error (`TimeoutError`, an S3 error); callers turn it into StorageError
 * (core/s3/objects.ts).
 */
export function createS3Client(options: S3ClientOptions = {}): S3Client {
  return new S3Client({
    ...(options.region ? { region: options.region } : {}),
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    ...(options.credentials ? { credentials: options.credentials } : {}),
    forcePathStyle: options.forcePathStyle ?? false,
    retryMode: options.retryMode ?? 'adaptive',
    ...boundedClientOptions(options),
  });
}
