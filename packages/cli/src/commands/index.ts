/**
 * The commands of `armada`, one file each. A new command is a file exporting
 * `register<Name>(program, runtime)` (see plan.ts), listed here.
 */
import type { Command } from 'commander';
import type { CliRuntime } from '../session.js';
import { registerApply } from './apply.js';
import { registerDestroy } from './destroy.js';
import { registerMigrate } from './migrate.js';
import { registerPlan } from './plan.js';
import { registerStatus } from './status.js';

export type RegisterCommand = (program: Command, runtime: CliRuntime) => void;

export const commands: readonly RegisterCommand[] = [registerPlan, registerApply, registerDestroy, registerMigrate, registerStatus];
