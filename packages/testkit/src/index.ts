export * from './adversary.js';
export * from './agent.js';
export * from './control-plane.js';
export * from './net.js';
export * from './postgres.js';
export * from './processes.js';
export * from './s3.js';
export * from './servers.js';
