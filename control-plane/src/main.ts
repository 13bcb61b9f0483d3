import { createLogger } from '@dbbackup/logger';
import { ConfigError, loadConfig } from './config.js';
import { MasterKeyError } from './crypto/secret-box.js';
import { startControlPlane } from './server.js';
import { CONTROL_PLANE_VERSION } from './version.js';

async function main() {
  if (process.argv.includes('--version')) {
    process.stdout.write(`${CONTROL_PLANE_VERSION}\n`);
    return;
  }
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`dbbackup-control-plane: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const log = createLogger({ name: 'control-plane', level: config.logLevel });
  let cp: Awaited<ReturnType<typeof startControlPlane>>;
  try {
    cp = await startControlPlane(config, log);
  } catch (err) {
    if (err instanceof MasterKeyError) {
      process.stderr.write(`dbbackup-control-plane: ${err.message}\n`);
      log.fatal({ err: err.message }, 'control plane refused to start');
      process.exit(2);
    }
    log.fatal({ err }, 'control plane failed to start');
    process.exit(1);
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    const force = setTimeout(() => {
      log.error({ budgetMs: config.shutdownTimeoutMs }, 'shutdown took longer than its budget; exiting');
      process.exit(1);
    }, config.shutdownTimeoutMs);
    force.unref();
    cp.stop().then(
      () => process.exit(0),
      (err) => {
        log.error({ err }, 'error during shutdown');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

void main();
