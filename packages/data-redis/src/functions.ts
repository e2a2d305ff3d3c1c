/**
 * FUNCTION libraries (Redis 7): not keys, so neither SCAN/DUMP nor the RDB stream's RESTOREs carry
 * them. Copied with FUNCTION DUMP / FUNCTION RESTORE (the whole set in one payload), compared by
 * FUNCTION LIST WITHCODE.
 */
import { ArmadaError, ValidationError, type VerifyDifference } from '@armada/core';
import type { Redis } from 'ioredis';

/** A library as FUNCTION LIST WITHCODE shows it. */
export interface FunctionLibrary {
  name: string;
  engine: string;
  code: Buffer;
}

/** What the copy's checkpoint records (next to checkpoint.ts's fields): the libraries this copy restored. */
export interface FunctionsCheckpoint {
  functions?: string[];
}

export interface CopyFunctionsOptions {
  /** Replace a target library of the same name whose code differs (else refused). */
  replaceExisting?: boolean;
  /**
   * Libraries an earlier run of this same copy restored (from its checkpoint): they are the copy's
   * own, so a resumed copy replaces them if the source's code changed meanwhile, without
   * `replaceExisting`.
   */
  ours?: readonly string[];
}

/** Command absent (Redis before 7): there are no functions to copy or compare. */
const UNKNOWN_COMMAND = /unknown command|unknown subcommand/i;

/**
 * Copies every function library of the source to the target, before any key is written. Refuses
 * (a ValidationError naming each library) a target library of the same name with other code,
 * unless `replaceExisting`; an identical one is fine. Returns the names of the source's libraries
 * (now on the target).
 *
 * A source that does not know FUNCTION (before Redis 7) has none: skipped. A source that refuses
 * FUNCTION (ACL) is skipped only if INFO shows it has no library; otherwise, and when the target
 * cannot take them, the copy fails rather than silently leaving them out.
 */
export async function copyFunctions(source: Redis, target: Redis, options: CopyFunctionsOptions = {}): Promise<string[]> {
  const libraries = await listFunctions(source, 'source').catch(async (error: unknown) => {
    // FUNCTION refused (ACL): INFO's number_of_libraries (Redis 7) can still say there is nothing to copy.
    const info = await source.info('memory').catch(() => '');
    if (/^number_of_libraries:0\r?$/m.test(info)) return new Map<string, FunctionLibrary>();
    const count = /^number_of_libraries:(\d+)/m.exec(info)?.[1];
    throw new ValidationError(`The source Redis refused FUNCTION LIST${count ? `, and holds ${count} function ${count === '1' ? 'library' : 'libraries'}` : ''}: ${(error as Error).message}`, {
      issues: [{ path: 'source', message: 'its function libraries cannot be read', fix: 'allow the function|list and function|dump commands to the source user' }],
      cause: error,
    });
  });
  if (libraries === undefined || libraries.size === 0) return [];
  let payload: Buffer;
  try {
    payload = (await source.callBuffer('FUNCTION', 'DUMP')) as Buffer;
  } catch (error) {
    throw new ValidationError(`The source Redis holds function libraries (${[...libraries.keys()].join(', ')}), but refused FUNCTION DUMP: ${(error as Error).message}`, {
      issues: [{ path: 'source', message: `FUNCTION DUMP refused, libraries ${[...libraries.keys()].join(', ')} cannot be copied`, fix: 'allow the function|dump command to the source user' }],
    });
  }
  const existing = await listFunctions(target, 'target');
  if (existing === undefined) {
    throw new ValidationError(`The target Redis does not know FUNCTION, so it cannot hold the source's ${libraries.size} function libraries.`, {
      issues: [{ path: 'target', message: `libraries ${[...libraries.keys()].join(', ')} need Redis 7 or later`, fix: 'upgrade the target to Redis 7 or later' }],
    });
  }
  const ours = new Set(options.ours ?? []);
  const overlapping = [...libraries.values()].filter((library) => existing.has(library.name));
  const conflicts = overlapping.filter((library) => !sameLibrary(library, existing.get(library.name) as FunctionLibrary) && !options.replaceExisting && !ours.has(library.name));
  if (conflicts.length > 0) {
    throw new ValidationError(`The target Redis already holds function ${conflicts.length === 1 ? 'library' : 'libraries'} ${conflicts.map((library) => `'${library.name}'`).join(', ')} with other code.`, {
      issues: conflicts.map((library) => ({
        path: `function library ${library.name}`,
        message: `library '${library.name}' on the target differs from the source's`,
        fix: 'pass replaceExisting: true to replace it, or FUNCTION DELETE it on the target',
      })),
    });
  }
  // APPEND fails on any library of the same name, even an identical one; REPLACE of an identical one changes nothing.
  const mode = overlapping.length > 0 ? 'REPLACE' : 'APPEND';
  try {
    await target.callBuffer('FUNCTION', 'RESTORE', payload, mode);
  } catch (error) {
    // E.g. a function name that another target library already registers (names are global).
    throw new ValidationError(`The target Redis refused the source's function libraries (${[...libraries.keys()].join(', ')}): ${(error as Error).message}`, {
      issues: [{ path: 'target', message: (error as Error).message, fix: 'remove or rename the conflicting library on the target' }],
      cause: error,
    });
  }
  return [...libraries.keys()];
}

/**
 * The function libraries of source and target compared by name, engine and code: each one missing
 * on the target, only on the target (extra), or different. A server before Redis 7 has none.
 */
export async function compareFunctions(source: Redis, target: Redis): Promise<VerifyDifference[]> {
  const [here, there] = await Promise.all([listFunctions(source, 'source'), listFunctions(target, 'target')]);
  const sourceLibraries = here ?? new Map<string, FunctionLibrary>();
  const targetLibraries = there ?? new Map<string, FunctionLibrary>();
  const differences: VerifyDifference[] = [];
  const names = [...new Set([...sourceLibraries.keys(), ...targetLibraries.keys()])].sort();
  for (const name of names) {
    const left = sourceLibraries.get(name);
    const right = targetLibraries.get(name);
    const object = `function library ${name}`;
    if (left && !right) differences.push({ object, kind: 'missing', detail: `${describe(left)} on the source, absent on the target` });
    else if (!left && right) differences.push({ object, kind: 'extra', detail: `${describe(right)} on the target only` });
    else if (left && right && !sameLibrary(left, right)) {
      const what = left.engine !== right.engine ? 'engines differ' : 'code differs';
      differences.push({ object, kind: 'different', detail: `${what}: ${describe(left)} on the source, ${describe(right)} on the target` });
    }
  }
  return differences;
}

/** FUNCTION LIST WITHCODE by library name; undefined where the server has no FUNCTION command. */
export async function listFunctions(client: Redis, role: 'source' | 'target'): Promise<Map<string, FunctionLibrary> | undefined> {
  let reply: unknown;
  try {
    reply = await client.callBuffer('FUNCTION', 'LIST', 'WITHCODE');
  } catch (error) {
    if (UNKNOWN_COMMAND.test((error as Error).message)) return undefined;
    throw new ArmadaError('Unsupported', `The ${role} Redis refused FUNCTION LIST, so its function libraries cannot be read: ${(error as Error).message}`, { cause: error });
  }
  const libraries = new Map<string, FunctionLibrary>();
  for (const entry of reply as unknown[][]) {
    const fields = new Map<string, unknown>();
    for (let index = 0; index + 1 < entry.length; index += 2) fields.set(String(entry[index]), entry[index + 1]);
    const name = String(fields.get('library_name'));
    libraries.set(name, { name, engine: String(fields.get('engine')), code: fields.get('library_code') as Buffer });
  }
  return libraries;
}

const sameLibrary = (left: FunctionLibrary, right: FunctionLibrary) => left.engine === right.engine && left.code.equals(right.code);
const describe = (library: FunctionLibrary) => `engine ${library.engine}, ${library.code.length} bytes of code`;
