/**
 * DEFINER clauses: which account a view or stored program runs as. SHOW CREATE prints it in the
 * quoting of the object's sql_mode (backticks, or double quotes under ANSI_QUOTES); an account the
 * target lacks makes the object fail when used ("The user specified as a definer does not exist"),
 * so such a clause is left out (the copy's login becomes the definer) and the copy says so.
 */
import type { Connection } from '../sql.js';
import { quoteName, rows } from '../sql.js';

export interface DefinerAccount {
  user: string;
  /** Empty for a MariaDB role, which has no host. */
  host: string;
}

/** One quoted or bare part of an account name: `app`, 'app', "app" or app. */
const PART = String.raw`(?:\x60(?:[^\x60]|\x60\x60)*\x60|'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*"|[^\s@'"\x60=]+)`;
/** `CREATE [OR REPLACE] [ALGORITHM=...] DEFINER=account`: the clause is always before the object's keyword. */
const DEFINER_CLAUSE = new RegExp(String.raw`^(\s*CREATE\b(?:\s+OR\s+REPLACE)?(?:\s+ALGORITHM\s*=\s*\w+)?)\s+DEFINER\s*=\s*(${PART}(?:@${PART})?)`, 'i');
const ACCOUNT = new RegExp(`^(${PART})(?:@(${PART}))?$`);

function unquote(part: string): string {
  const quote = part[0];
  if (quote === '`') return part.slice(1, -1).replaceAll('``', '`');
  if (quote === "'" || quote === '"') {
    return part
      .slice(1, -1)
      .replaceAll(quote + quote, quote)
      .replace(/\\(.)/g, '$1');
  }
  return part;
}

/** An account in any quoting (`app`@`%`, 'app'@'%', "app"@"%", app@%, a role's 'r'), or undefined. */
export function parseAccount(text: string): DefinerAccount | undefined {
  const match = ACCOUNT.exec(text.trim());
  if (!match?.[1]) return undefined;
  return { user: unquote(match[1]), host: match[2] ? unquote(match[2]) : '' };
}

/** An account as SHOW CREATE prints it by default: `app`@`%` (a role: `r`). */
export const printAccount = (account: DefinerAccount) => (account.host === '' ? quoteName(account.user) : `${quoteName(account.user)}@${quoteName(account.host)}`);

const accountKey = (account: DefinerAccount) => `${account.user}\u0000${account.host}`;

/** The DEFINER of a CREATE statement, printed as `user`@`host` whatever its quoting; undefined without one. */
export function definerOf(statement: string): string | undefined {
  const clause = DEFINER_CLAUSE.exec(statement)?.[2];
  const account = clause === undefined ? undefined : parseAccount(clause);
  return account ? printAccount(account) : undefined;
}

/** The statement without its DEFINER clause (a view keeps its SQL SECURITY, which is a separate clause). */
export const withoutDefiner = (statement: string) => statement.replace(DEFINER_CLAUSE, '$1');

/**
 * Which DEFINER accounts exist on the target, plus `alsoCopied` (accounts this run creates, in any
 * quoting). The target's own login is always there. Without SELECT on mysql.user only that login is
 * known: every other definer is then left out and reported, which keeps the objects usable.
 */
export async function definerPolicy(target: Connection, alsoCopied: string[]): Promise<DefinerPolicy> {
  const known = new Set<string>();
  const [current] = await rows<{ account: string }>(target, 'SELECT CURRENT_USER() AS account');
  // CURRENT_USER() is user@host unquoted; the last @ separates them (a user name may hold one).
  const at = current?.account.lastIndexOf('@') ?? -1;
  const login = current && at >= 0 ? { user: current.account.slice(0, at), host: current.account.slice(at + 1) } : undefined;
  if (login) known.add(accountKey(login));
  const accounts = await rows<{ user: string; host: string }>(target, 'SELECT User AS user, Host AS host FROM mysql.user').catch(() => undefined);
  for (const account of accounts ?? []) known.add(accountKey({ user: String(account.user), host: String(account.host) }));
  for (const copied of alsoCopied) {
    const account = parseAccount(copied);
    if (account) known.add(accountKey(account));
  }
  const keeps = (definer: string) => {
    const account = parseAccount(definer);
    return account !== undefined && known.has(accountKey(account));
  };
  return Object.assign(keeps, { accountsKnown: accounts !== undefined, ...(login ? { login: printAccount(login) } : {}) });
}

/**
 * Whether a DEFINER is kept on the target; `accountsKnown` is false when the target login cannot
 * read mysql.user, so that only the login itself is known to exist.
 */
export type DefinerPolicy = ((definer: string) => boolean) & {
  accountsKnown?: boolean;
  /** The target login itself, printed as a DEFINER is (`migrator`@`%`). */
  login?: string;
};

/** The statement to create on the target: the DEFINER kept where the policy says, otherwise left out and reported. */
export function withCheckedDefiner(object: string, statement: string, definer: string | undefined, context: { keepsDefiner: DefinerPolicy; warn(message: string): void }): string {
  if (definer === undefined || context.keepsDefiner(definer)) return statement;
  const why = context.keepsDefiner.accountsKnown === false ? "could not be confirmed on the target (its login cannot read mysql.user)" : 'is not on the target';
  context.warn(`${object}: DEFINER ${definer} ${why}; created with the copy's login as definer`);
  return withoutDefiner(statement);
}
