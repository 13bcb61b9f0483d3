import type { StorageSpec } from '@dbbackup/proto';
import { agentConfig } from '../config.js';
import { LocalStore } from './local-store.js';
import type { ObjectStore } from './object-store.js';

/** The store a storage profile names. The AWS SDK is loaded only by agents that use S3 (it is most of an idle agent's memory otherwise). */
export async function openStore(spec: StorageSpec): Promise<ObjectStore> {
  if (spec.kind === 'local') return new LocalStore(spec);
  const { S3Store } = await import('./s3-store.js');
  const retryBaseMs = agentConfig().s3RetryBaseMs;
  return new S3Store(spec, retryBaseMs ? { retryBaseMs } : {});
}
