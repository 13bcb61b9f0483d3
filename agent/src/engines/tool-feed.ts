import { type Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/**
 * Feed a stream into a tool's stdin with backpressure, but keep draining after
 * the tool stops reading (as `pg_restore --list` does once it has the table of
 * contents): the stream's producer must see every byte, so that every segment
 * is authenticated and the checksum covers the whole object.
 */
export async function feedTool(
  input: Readable,
  stdin: NodeJS.WritableStream & { destroyed?: boolean },
): Promise<void> {
  let closed = false;
  let waiting: (() => void) | undefined;
  const release = () => {
    closed = true;
    const w = waiting;
    waiting = undefined;
    w?.();
  };
  stdin.on('error', release);
  stdin.on('close', release);
  const sink = new Writable({
    highWaterMark: 1024 * 1024,
    write(chunk: Buffer, _e, cb) {
      if (closed) return cb();
      if (stdin.write(chunk)) return cb();
      waiting = cb;
      stdin.once('drain', () => {
        const w = waiting;
        waiting = undefined;
        w?.();
      });
    },
    final(cb) {
      if (!closed) stdin.end();
      cb();
    },
  });
  await pipeline(input, sink);
}
