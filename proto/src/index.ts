export * from './codec.js';
export * from './commands.js';
export * from './messages.js';
export * from './retention.js';
export * from './targets.js';
export * from './version.js';
