import { main, UsageError } from './cli.js';
import { NotEnrolledError } from './identity.js';

main(process.argv.slice(2), process.env).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (
      err instanceof UsageError ||
      err instanceof NotEnrolledError ||
      (err as { code?: string })?.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION'
    ) {
      process.stderr.write(`dbbackup-agent: ${(err as Error).message}\n`);
      process.exit(2);
    }
    process.stderr.write(`dbbackup-agent: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(1);
  },
);
