/**
 * The local state file: a cache of what the last run saw, never the source of truth (discovery by
 * ownership tags is). It lets `status` answer without calling the cloud, and lets a plan point out
 * drift: resources that vanished outside Armada, or that an interrupted run made without recording.
 * Sensitive properties are never written; the file is created with mode 0600.
 */
import { readFile, } from 'node:fs/promises';
import { writeFileAtomic } from './files.js';
import type { Plan } from './plan/types.js';
import type { PlanNote } from './provider.js';
import { SENSITIVE_PROPERTIES, type ObservedResource } from './resources.js';

export interface StateFile {
  version: 1;
  environment: string;
  provider: { id: string; region: string };
  /** ISO time of the run that wrote it. */
  writtenAt: string;
  resources: ObservedResource[];
}

function withoutSecrets(resource: ObservedResource): ObservedResource {
  const sensitive = SENSITIVE_PROPERTIES[resource.kind] as readonly string[];
  if (sensitive.length === 0) return resource;
  const properties = Object.fromEntries(Object.entries(resource.properties).filter(([key]) => !sensitive.includes(key)));
  return { ...resource, properties: properties as unknown as ObservedResource['properties'] };
}

export async function writeStateFile(path: string, state: Omit<StateFile, 'version' | 'writtenAt'>): Promise<void> {
  const file: StateFile = { version: 1, writtenAt: new Date().toISOString(), ...state, resources: state.resources.map(withoutSecrets) };
  await writeFileAtomic(path, `${JSON.stringify(file, null, 2)}\n`);
}

/** The state file, or undefined when there is none yet. */
export async function readStateFile(path: string): Promise<StateFile | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const parsed = JSON.parse(text) as StateFile;
  if (parsed.version !== 1) throw new Error(`${path} is a state file of version ${String(parsed.version)}; this Armada reads version 1.`);
  return parsed;
}

/** Notes on where the cloud and the cached state disagree. The plan itself follows the cloud. */
export function driftNotes(plan: Plan, state: StateFile | undefined): PlanNote[] {
  if (!state || state.environment !== plan.environment) return [];
  const discovered = new Set(plan.actions.flatMap((action) => (action.current ? [action.current.id] : [])));
  const cached = new Set(state.resources.map((resource) => resource.id));
  const notes: PlanNote[] = [];
  for (const resource of state.resources) {
    if (!discovered.has(resource.id)) {
      notes.push({ severity: 'warning', path: resource.address, message: `${resource.id} is in the state file but no longer in the cloud: deleted outside Armada?` });
    }
  }
  for (const action of plan.actions) {
    if (action.current && !cached.has(action.current.id)) {
      notes.push({ severity: 'info', path: action.address, message: `${action.current.id} was found by its ownership tags but is not in the state file (made by an interrupted run?)` });
    }
  }
  return notes;
}
