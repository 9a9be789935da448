/**
 * Runs `fn` over `items`, at most `limit` at a time, keeping order in the result. After the first
 * failure no new item is started; the calls already running are awaited, then that first error is
 * thrown (so a failing S3 does not receive thousands more requests, and no call is left running).
 */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  let failed = false;
  let failure: unknown;
  const workers = Array.from({ length: Math.min(Math.max(1, limit), items.length) }, async () => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        out[i] = await fn(items[i] as T, i);
      } catch (err) {
        if (!failed) failure = err;
        failed = true;
      }
    }
  });
  await Promise.all(workers);
  if (failed) throw failure;
  return out;
}
