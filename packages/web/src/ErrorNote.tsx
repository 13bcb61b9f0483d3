import { ApiError } from './api.js';

/** An API error in words, next to what it is about. */
export function ErrorNote({ error }: { error: unknown }) {
  const text =
    error instanceof ApiError
      ? error.status === 0
        ? error.message
        : `${error.message} (${error.status})`
      : String(error);
  return (
    <p className="error" role="alert">
      {text}
    </p>
  );
}
