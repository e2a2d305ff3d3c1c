/**
 * Schema objects other than tables, one module per kind, each reading it from the source,
 * recreating it on the target and comparing the two. The mover calls them in this order:
 * sequences and routines before the data (a table's DEFAULT may call NEXTVAL, a view a function),
 * views before the data, triggers (so they do not fire during the load) and events after it.
 */
export type { CompareResult, ObjectCopyContext, SchemaObjectKind } from './types.js';
export { type DefinerPolicy, definerPolicy } from './definers.js';
export { events, routines, triggers, type RoutineType, type StoredEvent, type StoredRoutine, type StoredTrigger } from './programs.js';
export { sequences, type StoredSequence } from './sequences.js';
export { views, type StoredView } from './views.js';
