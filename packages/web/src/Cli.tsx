/** The `dbbackup` command that does what the control next to it does: the UI teaches the CLI. */
export function Cli({ cmd }: { cmd: string }) {
  return (
    <p className="cli">
      CLI: <code>{cmd}</code>
    </p>
  );
}

/** A shell word: quoted when it holds anything a shell would read. */
export function shellWord(s: string): string {
  return /^[A-Za-z0-9_./:@=,+-]+$/.test(s) ? s : `'${s.replaceAll("'", "'\\''")}'`;
}

/** `dbbackup api METHOD PATH --data JSON`, for an action no dedicated command covers. */
export function apiCli(method: string, path: string, body?: unknown): string {
  return `dbbackup api ${method} ${path}${body === undefined ? '' : ` --data ${shellWord(JSON.stringify(body))}`}`;
}
