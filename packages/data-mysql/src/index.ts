import { ArmadaTokens, definePlugin, type ArmadaPlugin, type DataMoverRegistration } from '@armada/core';
import { MYSQL_DATA_MOVER_ID, MysqlDataMover } from './mover.js';

export { MysqlDataMover, MYSQL_DATA_MOVER_ID, type MysqlCopyOptions, type MysqlCopyReport, AUTO_DEFER_ROWS } from './mover.js';
export type { MysqlVerifyOptions } from './verify.js';
export type { AccountsReport, MysqlUsersOptions } from './accounts.js';

/** The plugin: registers data mover id `mysql`. */
export function mysqlDataMoverPlugin(): ArmadaPlugin {
  return definePlugin({
    specificationVersion: 'v1',
    id: '@armada/data-mysql',
    register(container) {
      const registration: DataMoverRegistration = { id: MYSQL_DATA_MOVER_ID, create: () => new MysqlDataMover() };
      container.register(ArmadaTokens.DataMover, { useValue: registration });
    },
  });
}
export { MysqlReplication, replicateMysql, type BinlogPosition, type MysqlReplicationStatus } from './replication.js';
