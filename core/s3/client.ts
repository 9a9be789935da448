import { S3Client } from '@aws-sdk/client-s3';

export interface S3ClientOptions {
  region?: string;
  /** A non-AWS endpoint (the local S3 server); unset on AWS. */
  endpoint?: string;
  /** Path-style addressing, which local servers need. */
  forcePathStyle?: boolean;
}

export function createS3Client(options: S3ClientOptions = {}): S3Client {
  return new S3Client({
    ...(options.region ? { region: options.region } : {}),
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    forcePathStyle: options.forcePathStyle ?? false,
    // Adaptive retries ride out S3 throttling (503 SlowDown) during large parallel uploads.
    retryMode: 'adaptive',
    maxAttempts: 5,
  });
}
