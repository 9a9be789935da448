import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';

/**
 * An S3 client over a map of objects, for unit tests of code that lists and reads JSON: ListObjectsV2
 * (the keys under `Prefix`, one page) and GetObject (the value as JSON; a missing key fails as S3's
 * NoSuchKey, HTTP 404). Any other call fails naming its command, or with `acceptOtherCalls` answers `{}`
 * (writes the test does not look at). `fail` makes every call fail with it.
 *
 * @param objects key → the object's content, serialised with JSON.stringify when read
 */
export function memoryS3(
  objects: Record<string, unknown>,
  options: { fail?: Error; acceptOtherCalls?: boolean } = {},
): S3Client {
  return Object.assign(Object.create(S3Client.prototype), {
    send: async (command: unknown) => {
      if (options.fail) throw options.fail;
      if (command instanceof ListObjectsV2Command) {
        const prefix = command.input.Prefix ?? '';
        return {
          Contents: Object.keys(objects)
            .filter((k) => k.startsWith(prefix))
            .map((Key) => ({ Key })),
        };
      }
      if (command instanceof GetObjectCommand) {
        const body = objects[command.input.Key ?? ''];
        if (body === undefined)
          throw Object.assign(new Error('NoSuchKey'), {
            name: 'NoSuchKey',
            $metadata: { httpStatusCode: 404 },
          });
        return { Body: { transformToString: async () => JSON.stringify(body) } };
      }
      if (options.acceptOtherCalls) return {};
      throw new Error(`unexpected S3 call ${(command as object).constructor.name}`);
    },
  }) as S3Client;
}
