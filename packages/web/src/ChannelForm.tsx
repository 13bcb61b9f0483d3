import { useState } from 'react';
import { api } from './api.js';
import { apiCli, Cli } from './Cli.js';
import { ErrorNote } from './ErrorNote.js';
import { useAction } from './useAction.js';

type Kind = 'webhook' | 'slack' | 'email';
/** A channel as the API lists it: its settings hold nothing that works as a credential. */
export type Channel = {
  id: string;
  name: string;
  kind: string;
  enabled: boolean;
  events: string[] | null;
  settings: { urlHost?: string; host?: string; port?: number; from?: string; to?: string[] };
};
/** The events a channel can be sent, and those a new one gets unless told otherwise. */
export type EventCatalogue = { events: string[]; defaultEvents: string[] };

type Draft = {
  name: string;
  kind: Kind;
  url: string;
  secret: string;
  host: string;
  port: number;
  user: string;
  password: string;
  from: string;
  to: string;
};
const EMPTY: Draft = {
  name: '',
  kind: 'webhook',
  url: '',
  secret: '',
  host: '',
  port: 587,
  user: '',
  password: '',
  from: '',
  to: '',
};

/** What is known of a channel, for its form: URLs and secrets are never sent back, so they are typed again. */
function draftOf(c: Channel): Draft {
  const s = c.settings;
  return {
    ...EMPTY,
    name: c.name,
    kind: c.kind as Kind,
    host: s.host ?? '',
    port: s.port ?? EMPTY.port,
    from: s.from ?? '',
    to: (s.to ?? []).join(', '),
  };
}

function config(d: Draft) {
  if (d.kind === 'webhook') return { kind: d.kind, url: d.url, secret: d.secret };
  if (d.kind === 'slack') return { kind: d.kind, url: d.url };
  return {
    kind: d.kind,
    host: d.host,
    port: d.port,
    ...(d.user ? { user: d.user, password: d.password } : {}),
    from: d.from,
    to: d.to
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  };
}

/**
 * A new notification channel, or a change to one (admin): the events it is sent and, when
 * asked, its connection settings. A typed secret goes to the API once and is never shown again.
 */
export function ChannelForm({
  channel,
  catalogue,
  onDone,
}: {
  channel?: Channel;
  catalogue: EventCatalogue;
  onDone: () => void;
}) {
  const [d, setD] = useState<Draft>(channel ? draftOf(channel) : EMPTY);
  const [events, setEvents] = useState<string[]>(channel?.events ?? catalogue.defaultEvents);
  // A change keeps the connection settings unless they are typed again in full.
  const [replace, setReplace] = useState(!channel);
  const save = useAction<unknown>();
  // The CLI line never repeats a secret typed here.
  const shown = {
    ...config(d),
    ...(d.secret ? { secret: '…' } : {}),
    ...(d.password ? { password: '…' } : {}),
  };
  const body = (cfg: unknown) =>
    channel ? { events, ...(replace ? { config: cfg } : {}) } : { name: d.name, config: cfg, events };
  const [method, path] = channel
    ? ['PATCH', `/notifications/channels/${channel.id}`]
    : ['POST', '/notifications/channels'];
  return (
    <form
      className="form channel-form"
      aria-label={channel ? `Change ${channel.name}` : 'New channel'}
      onSubmit={(e) => {
        e.preventDefault();
        void save.run(async () => {
          await api(method, path, body(config(d)));
          if (!channel) setD(EMPTY);
          onDone();
        });
      }}
    >
      {!channel && <h3>Add a channel</h3>}
      {!channel && <TextField d={d} setD={setD} k="name" label="Name" />}
      {channel && (
        <label className="check">
          <input type="checkbox" checked={replace} onChange={(e) => setReplace(e.target.checked)} />
          Replace its connection settings (the URL and secrets are typed again)
        </label>
      )}
      {replace && <ConnectionFields d={d} setD={setD} />}
      <EventsField catalogue={catalogue} events={events} setEvents={setEvents} />
      <button type="submit" disabled={save.busy || events.length === 0}>
        {channel ? `Save ${channel.name}` : 'Add the channel'}
      </button>
      {save.error ? <ErrorNote error={save.error} /> : null}
      <Cli cmd={apiCli(method, path, body(shown))} />
    </form>
  );
}

type FieldProps = { d: Draft; setD: (d: Draft) => void };

function TextField({
  d,
  setD,
  k,
  label,
  type = 'text',
}: FieldProps & { k: keyof Draft; label: string; type?: string }) {
  return (
    <label>
      {label}
      <input
        type={type}
        value={String(d[k])}
        autoComplete={type === 'password' ? 'new-password' : 'off'}
        onChange={(e) => setD({ ...d, [k]: type === 'number' ? Number(e.target.value) : e.target.value })}
      />
    </label>
  );
}

function ConnectionFields({ d, setD }: FieldProps) {
  const f = { d, setD };
  return (
    <>
      <label>
        Kind
        <select value={d.kind} onChange={(e) => setD({ ...d, kind: e.target.value as Kind })}>
          <option value="webhook">webhook (signed JSON)</option>
          <option value="slack">Slack incoming webhook</option>
          <option value="email">email (SMTP)</option>
        </select>
      </label>
      {d.kind !== 'email' && <TextField {...f} k="url" label="URL" type="url" />}
      {d.kind === 'webhook' && (
        <TextField {...f} k="secret" label="Signing secret (16 characters or more)" type="password" />
      )}
      {d.kind === 'email' && (
        <>
          <TextField {...f} k="host" label="SMTP host" />
          <TextField {...f} k="port" label="Port" type="number" />
          <TextField {...f} k="user" label="User (optional)" />
          <TextField {...f} k="password" label="Password" type="password" />
          <TextField {...f} k="from" label="From" />
          <TextField {...f} k="to" label="To (comma-separated)" />
        </>
      )}
    </>
  );
}

function EventsField({
  catalogue,
  events,
  setEvents,
}: {
  catalogue: EventCatalogue;
  events: string[];
  setEvents: (e: string[]) => void;
}) {
  return (
    <fieldset className="events">
      <legend>Events it is sent (at least one)</legend>
      {catalogue.events.map((e) => (
        <label key={e} className="check">
          <input
            type="checkbox"
            checked={events.includes(e)}
            onChange={(x) =>
              setEvents(catalogue.events.filter((c) => (c === e ? x.target.checked : events.includes(c))))
            }
          />
          {e}
        </label>
      ))}
    </fieldset>
  );
}
