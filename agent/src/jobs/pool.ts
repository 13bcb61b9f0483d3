/**
 * `fn` over `items`, at most `concurrency` at a time. The first failure stops the others
 * from taking more, and is thrown only once every call already started has ended: a caller
 * that cleans up after a failure (removes a directory, say) never races a call still writing.
 */
export async function eachAtMost<T>(
  items: readonly T[],
  concurrency: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  const queue = [...items];
  let failure: { err: unknown } | undefined;
  const worker = async () => {
    for (let item = queue.shift(); item !== undefined && !failure; item = queue.shift()) {
      try {
        await fn(item);
      } catch (err) {
        failure ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, worker));
  if (failure) throw failure.err;
}
