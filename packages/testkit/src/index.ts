export * from './faults.js';
export * from './in-memory/cloud.js';
export * from './in-memory/provider.js';
export * from './aws-emulator/index.js';
export * from './do-emulator/index.js';
export * from './ssh-server.js';
export * from './redis-server.js';
export * from './mariadb-server.js';
