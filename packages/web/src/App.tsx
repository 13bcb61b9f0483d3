import { useEffect, useState } from 'react';
import { currentUser, logout, onConnection, onSession, renew, type User } from './api.js';
import { DatabasePage } from './DatabasePage.js';
import { Databases } from './Databases.js';
import { Hosts } from './Hosts.js';
import { JobPage } from './JobPage.js';
import { Login } from './Login.js';
import { Overview } from './Overview.js';
import { Settings } from './Settings.js';

/** Where the page is: the path, kept in the address bar (history API). */
function usePath(): [string, (p: string) => void] {
  const [path, setPath] = useState(location.pathname);
  useEffect(() => {
    const back = () => setPath(location.pathname);
    addEventListener('popstate', back);
    return () => removeEventListener('popstate', back);
  }, []);
  return [
    path,
    (p) => {
      history.pushState(null, '', p);
      setPath(p);
    },
  ];
}

export function App() {
  const [user, setUser] = useState<User | undefined>(currentUser());
  const [checked, setChecked] = useState(false);
  const [lost, setLost] = useState(false);
  const [path, go] = usePath();
  useEffect(() => onSession(setUser), []);
  useEffect(() => onConnection(setLost), []);
  useEffect(() => {
    // A page opened (or reloaded) with a session cookie continues that session.
    renew()
      .catch(() => false)
      .finally(() => setChecked(true));
  }, []);
  useEffect(() => {
    if (checked && !user && path !== '/login') go('/login');
    if (user && path === '/login') go('/');
  }, [checked, user, path, go]);

  if (!checked) return <p className="loading">Loading…</p>;
  return (
    <>
      {lost && (
        <div className="banner" role="alert">
          The control plane cannot be reached. This page retries by itself.
        </div>
      )}
      {user ? (
        <Shell user={user} path={path} go={go} />
      ) : (
        <main className="login-page">
          <Login />
        </main>
      )}
    </>
  );
}

function Shell({ user, path, go }: { user: User; path: string; go: (p: string) => void }) {
  return (
    <div className="shell">
      <header className="top">
        <a
          className="brand"
          href="/"
          onClick={(e) => {
            e.preventDefault();
            go('/');
          }}
        >
          dbbackup
        </a>
        <nav aria-label="Main">
          {[
            ['/', 'Overview'],
            ['/databases', 'Databases'],
            ['/hosts', 'Hosts'],
            ['/settings', 'Settings'],
          ].map(([href, label]) => (
            <a
              key={href}
              href={href}
              aria-current={
                path === href || (href !== '/' && path.startsWith(`${href}/`)) ? 'page' : undefined
              }
              onClick={(e) => {
                e.preventDefault();
                go(href!);
              }}
            >
              {label}
            </a>
          ))}
        </nav>
        <div className="who">
          <span>
            {user.username} <span className="role">({user.role})</span>
          </span>
          <button type="button" onClick={() => void logout()}>
            Log out
          </button>
        </div>
      </header>
      <main>
        <Screen user={user} path={path} go={go} />
      </main>
    </div>
  );
}

function Screen({ user, path, go }: { user: User; path: string; go: (p: string) => void }) {
  const job = /^\/jobs\/([0-9a-f-]{36})$/.exec(path);
  if (job) return <JobPage id={job[1]!} />;
  const db = /^\/databases\/([0-9a-f-]{36})$/.exec(path);
  if (db) return <DatabasePage key={db[1]} id={db[1]!} user={user} go={go} />;
  if (path === '/databases') return <Databases user={user} go={go} />;
  if (path === '/hosts') return <Hosts user={user} />;
  if (path === '/settings') return <Settings user={user} />;
  return <Overview user={user} go={go} />;
}
