export type FleetOverview = {
  agents: { total: number; online: number; offline: number; pending: number; revoked: number };
  targets: { total: number; overdue: number; failing: number; neverBackedUp: number; running: number };
  last24h: { succeeded: number; failed: number; successRate: number | null };
  backupsStored: number;
  bytesStored: number;
  firingAlerts: number;
  days: { day: string; succeeded: number; failed: number; bytes: number }[];
};

export type TargetRow = {
  id: string;
  name: string;
  engine: string;
  physical: boolean;
  agentId: string;
  host: string;
  agentStatus: string;
  storage: string | null;
  lastGoodAt: string | null;
  lastGoodId: string | null;
  lastGoodBytes: number | null;
  prevGoodBytes: number | null;
  lastVerifiedAt: string | null;
  health: 'healthy' | 'running' | 'overdue' | 'failing' | 'never';
  nextRunAt: string | null;
  strip: string;
};

export type Job = {
  id: string;
  type: string;
  state: string;
  targetId: string | null;
  backupId: string | null;
  progress: {
    phase?: string;
    bytesDumped?: number;
    bytesStored?: number;
    rateBytesPerSecond?: number | null;
  } | null;
  error: { code?: string; message?: string } | null;
  result: Record<string, unknown> | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
};

export type Alert = { id: string; kind: string; message: string; targetId?: string | null };

export type BackupRow = {
  id: string;
  status: string;
  startedAt: string;
  finishedAt: string | null;
  sizeBytes: number | null;
  dumpBytes: number | null;
  durationMs: number | null;
  storage: string | null;
  jobId: string | null;
  verified: 'passed' | 'failed' | null;
  verifiedAt: string | null;
  physical: boolean;
  tables: string[];
};

export type RestoreRow = {
  jobId: string;
  type: string;
  state: string;
  backupId: string | null;
  destination: string | null;
  database: string | null;
  conflict: string | null;
  error: string | null;
  createdAt: string;
  finishedAt: string | null;
};

export type TargetDetail = {
  target: TargetRow;
  health: {
    lastGoodBackupAt: string | null;
    rpoSeconds: number | null;
    nextExpectedRun: string | null;
    alerts: { kind: string; message: string; firedAt: string }[];
  };
  backups: BackupRow[];
  restores: RestoreRow[];
};

export type Schedule = {
  id: string;
  cron: string;
  timezone: string;
  enabled: boolean;
  storageId: string | null;
  compression: string | null;
  nextRun: string | null;
};
