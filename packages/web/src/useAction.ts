import { useState } from 'react';

/** Run one action at a time and keep its outcome: an error to show, or a result. */
export function useAction<T>() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  const [result, setResult] = useState<T | undefined>();
  const run = async (fn: () => Promise<T>) => {
    setBusy(true);
    setError(undefined);
    setResult(undefined);
    try {
      setResult(await fn());
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return { run, busy, error, result, setResult };
}
