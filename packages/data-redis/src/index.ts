import { ArmadaTokens, definePlugin, type ArmadaPlugin, type DataMoverRegistration } from '@armada/core';
import { REDIS_DATA_MOVER_ID, RedisDataMover } from './mover.js';

export { RedisDataMover, REDIS_DATA_MOVER_ID, type RedisCopyOptions } from './mover.js';

/** The plugin: registers data mover id `redis`. */
export function redisDataMoverPlugin(): ArmadaPlugin {
  return definePlugin({
    specificationVersion: 'v1',
    id: '@armada/data-redis',
    register(container) {
      const registration: DataMoverRegistration = { id: REDIS_DATA_MOVER_ID, create: () => new RedisDataMover() };
      container.register(ArmadaTokens.DataMover, { useValue: registration });
    },
  });
}
export { RedisReplication, replicateRedis, type CutoverReport, type ReplicationStatus } from './replication.js';
export type { RedisCopyReport, RedisCopyStrategy } from './mover.js';
