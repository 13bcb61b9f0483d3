import type { Logger } from '@dbbackup/logger';

/**
 * Run `tick` every `ms`, never two at once; a failing tick is logged and the next
 * one runs as usual. `stop` waits for a tick in progress.
 */
export function periodic(ms: number, tick: () => Promise<void>, log: Logger, what: string) {
  let running: Promise<void> | undefined;
  const timer = setInterval(() => {
    running ??= tick()
      .catch((err) => log.warn({ err }, `${what} failed; trying again`))
      .finally(() => {
        running = undefined;
      });
  }, ms);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
