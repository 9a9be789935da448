import type { S3Client } from '@aws-sdk/client-s3';
import { type UploadedObject, type UploadStreamOptions, uploadStream } from '../s3/upload-stream.js';
import type { RunningTool } from './run-tool.js';

/**
 * Streams a tool's standard output into one S3 object. The object is completed only if the tool
 * exits 0; if the tool fails or is killed, or S3 fails, the upload is aborted, the tool is stopped,
 * and the error names the cause (ToolFailed before StorageError: the tool's failure explains the rest).
 */
export async function streamToolToS3(
  s3: S3Client,
  tool: RunningTool,
  options: Omit<UploadStreamOptions, 'beforeComplete'>,
): Promise<UploadedObject> {
  try {
    return await uploadStream(s3, tool.stdout, { ...options, beforeComplete: () => tool.done });
  } catch (err) {
    if (tool.child.exitCode === null && tool.child.signalCode === null) {
      tool.child.kill('SIGTERM');
      tool.stdout.resume(); // drain so the tool is not blocked writing while it shuts down
    }
    const toolError = await tool.done.then(
      () => undefined,
      (e: unknown) => e,
    );
    // If the tool died on its own, that is the cause; a tool we killed after an S3 error, or after
    // its connection went silent (DatabaseUnreachable from a stall guard), is not.
    if (toolError && !(err instanceof Error && /^(StorageError|DatabaseUnreachable)$/.test(err.name)))
      throw toolError;
    throw err;
  }
}
