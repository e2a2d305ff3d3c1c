/**
 * Asking before changing a cloud: a prompt on a terminal, --yes (or --auto-approve) elsewhere.
 */
import { createInterface } from 'node:readline/promises';
import { UsageError } from './errors.js';
import type { Session } from './session.js';

/** True when the user approved. Throws a usage error when nobody can be asked and --yes is missing. */
export async function approve(session: Session, question: string, yes: boolean): Promise<boolean> {
  if (yes) return true;
  const { stdin, stderr } = session.io;
  if (!stdin?.isTTY || stderr.isTTY !== true) {
    throw new UsageError(`${session.command} needs approval: pass --yes (or --auto-approve) when not running in a terminal.`, { code: 'NeedsApproval' });
  }
  const prompt = createInterface({ input: stdin, output: stderr as NodeJS.WritableStream, terminal: true });
  const controller = new AbortController();
  const onAbort = () => controller.abort();
  session.signal?.addEventListener('abort', onAbort, { once: true });
  prompt.on('SIGINT', onAbort);
  try {
    const answer = await prompt.question(`${question} Type "yes" to go on: `, { signal: controller.signal });
    return /^\s*y(es)?\s*$/i.test(answer);
  } catch {
    // Ctrl-C at the prompt: the same as no.
    stderr.write('\n');
    return false;
  } finally {
    session.signal?.removeEventListener('abort', onAbort);
    prompt.close();
  }
}
