/**
 * Live progress of apply and destroy on stderr. On a terminal: one line that updates in place
 * (how many steps are done, which are running), with retries and failures printed above it.
 * Elsewhere (CI logs, a pipe): one line per finished step.
 */
import type { ExecutionEvent, StepRef } from '@armada/core';
import type { Session } from './session.js';

const PAST: Record<StepRef['step'], string> = { create: 'created', update: 'updated', delete: 'deleted' };
const ING: Record<StepRef['step'], string> = { create: 'creating', update: 'updating', delete: 'deleting' };

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

export interface Progress {
  onEvent(event: ExecutionEvent): void;
  /** Clears the updating line; call before printing the result. */
  finish(): void;
}

export function createProgress(session: Session, total: number): Progress {
  const stderr = session.io.stderr;
  const live = stderr.isTTY === true;
  const running = new Map<string, StepRef>();
  let finished = 0;
  let drawn = false;
  const width = String(total).length;
  const counter = () => `[${String(finished).padStart(width)}/${total}]`;
  const key = (ref: StepRef) => `${ref.step}:${ref.address}:${ref.id ?? ''}`;

  const clear = () => {
    if (drawn) stderr.write('\r\x1b[2K');
    drawn = false;
  };
  const draw = () => {
    if (!live) return;
    const first = running.values().next().value as StepRef | undefined;
    const more = running.size > 1 ? ` (+${running.size - 1} more)` : '';
    const columns = (stderr as { columns?: number }).columns ?? 100;
    const text = `${counter()} ${first ? `${ING[first.step]} ${first.address}${more}` : 'waiting'}`;
    stderr.write(`\r\x1b[2K${text.slice(0, Math.max(20, columns - 1))}`);
    drawn = true;
  };
  /** A line that stays: above the updating one on a terminal. */
  const line = (text: string) => {
    clear();
    stderr.write(`${text}\n`);
    draw();
  };

  return {
    onEvent(event) {
      switch (event.type) {
        case 'started':
          running.set(key(event), event);
          draw();
          break;
        case 'succeeded':
          running.delete(key(event));
          finished++;
          if (live) draw();
          else line(`${counter()} ${PAST[event.step]} ${event.address}${event.id ? ` (${event.id})` : ''} in ${seconds(event.durationMs)}`);
          break;
        case 'retried':
          line(`${counter()} ${session.styleErr('yellow', 'retrying')} ${event.step} ${event.address} (attempt ${event.attempt}): [${event.error.code}] ${event.error.message}`);
          break;
        case 'failed':
          running.delete(key(event));
          finished++;
          line(`${counter()} ${session.styleErr('red', 'FAILED')} ${event.step} ${event.address}: [${event.error.code}] ${event.error.message}`);
          break;
        case 'skipped':
          finished++;
          line(`${counter()} not done ${event.step} ${event.address}: ${event.reason}`);
          break;
      }
    },
    finish() {
      clear();
    },
  };
}
