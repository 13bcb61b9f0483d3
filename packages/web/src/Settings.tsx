import type { User } from './api.js';
import { SettingsAccess } from './SettingsAccess.js';
import { SettingsAudit } from './SettingsAudit.js';
import { SettingsKeys } from './SettingsKeys.js';
import { SettingsNotifications } from './SettingsNotifications.js';
import { SettingsStorage } from './SettingsStorage.js';

/** Storage, notifications, and for admins users and tokens, the audit trail and the keys. */
export function Settings({ user }: { user: User }) {
  const operator = user.role !== 'viewer';
  const admin = user.role === 'admin';
  return (
    <section aria-labelledby="settings-title">
      <h1 id="settings-title">Settings</h1>
      <SettingsStorage canOperate={operator} />
      {operator && <SettingsNotifications admin={admin} />}
      {admin && <SettingsAccess />}
      {admin && <SettingsKeys />}
      {admin && <SettingsAudit />}
      {!admin && <p className="muted">Users, API tokens, keys and the audit trail are for admins.</p>}
    </section>
  );
}
