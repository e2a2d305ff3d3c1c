/** The contract every kind of schema object follows: read from the source, create on the target, compare. */
import type { VerifyDifference } from '@armada/core';
import type { Connection } from '../sql.js';
import type { DefinerPolicy } from './definers.js';

export interface ObjectCopyContext {
  /** The source connection (in the copy: the snapshot transaction's connection; only read). */
  source: Connection;
  /** The target connection (UTC, COPY_SQL_MODE, FOREIGN_KEY_CHECKS=0). */
  target: Connection;
  /** Opens another target connection with a given mysql2 charset (for programs written under e.g. latin1); the caller closes nothing: you close what you open. */
  openTarget(charset: string): Promise<Connection>;
  /** True when this DEFINER account ('user'@'host' as SHOW CREATE prints it, e.g. `app`@`%`) exists on the target or is copied by this run: keep DEFINER; otherwise drop the clause and report it. */
  keepsDefiner: DefinerPolicy;
  /** A warning for the copy report, e.g. "view shop.v: DEFINER `app`@`%` is not on the target; created with the copy's login as definer". */
  warn(message: string): void;
}

export interface CompareResult {
  compared: number;
  differences: VerifyDifference[];
  notes: string[];
}

export interface SchemaObjectKind<T> {
  kind: 'routine' | 'view' | 'trigger' | 'event' | 'sequence';
  read(source: Connection, database: string): Promise<T[]>;
  /** Idempotent: a resumed copy calls it again on a target that may hold some of them. */
  create(database: string, objects: T[], context: ObjectCopyContext): Promise<void>;
  /** Every object of this kind in `database`, on both sides: missing, extra (only on the target) and different ones. */
  compare(source: Connection, target: Connection, database: string): Promise<CompareResult>;
}
