import { useQuery } from '@tanstack/react-query';
import { api } from './api.js';
import { apiCli, Cli } from './Cli.js';
import { ErrorNote } from './ErrorNote.js';
import { useAction } from './useAction.js';

type Channel = { id: string; name: string; kind: string; enabled: boolean; events: string[] | null };
type Outcome = { state: 'delivered' | 'failed'; error: string | null };

/** Notification channels, each with a test message sent now (operators; admins manage them by API). */
export function SettingsNotifications() {
  const q = useQuery({
    queryKey: ['channels'],
    queryFn: () => api<{ items: Channel[] }>('GET', '/notifications/channels'),
  });
  return (
    <section aria-labelledby="channels-title" className="card">
      <h2 id="channels-title">Notification channels</h2>
      {q.error && <ErrorNote error={q.error} />}
      {q.data?.items.length === 0 && (
        <p className="muted">No channel: alerts are only shown here and in the API.</p>
      )}
      <ul className="plain">
        {q.data?.items.map((c) => (
          <ChannelRow key={c.id} channel={c} />
        ))}
      </ul>
      <Cli cmd={apiCli('GET', '/notifications/channels')} />
    </section>
  );
}

function ChannelRow({ channel: c }: { channel: Channel }) {
  const test = useAction<Outcome>();
  return (
    <li data-testid={`channel-${c.name}`}>
      <strong>{c.name}</strong> <span className="muted">{c.kind}</span>
      {c.enabled ? '' : ' (disabled)'} — {c.events?.join(', ') || 'every event'}
      <button
        type="button"
        className="secondary"
        disabled={test.busy}
        onClick={() => void test.run(() => api<Outcome>('POST', '/notifications/test', { channelId: c.id }))}
      >
        Send a test<span className="visually-hidden"> to {c.name}</span>
      </button>
      <Cli cmd={apiCli('POST', '/notifications/test', { channelId: c.id })} />
      {test.error ? <ErrorNote error={test.error} /> : null}
      {test.result && (
        <span role="status" className={test.result.state === 'delivered' ? '' : 'error'}>
          {test.result.state === 'delivered'
            ? 'Delivered.'
            : `Not delivered: ${test.result.error ?? 'no reason given'}`}
        </span>
      )}
    </li>
  );
}
