/**
 * Where the servers can take their language runtimes from. The policies name third-party
 * repositories for versions the distribution no longer ships (Sury's PHP 5.6, Adoptium's Java 8);
 * a world that cannot reach them (the offline world, an air-gapped network) gets the
 * distribution's own version instead, and says so: every substitution comes back as a typed
 * record and a note such as "web: PHP 5.6 from sury → Debian's PHP 8.2 (sury unreachable
 * offline)", for the caller's report. Nothing is substituted unless the caller says a repository
 * cannot be reached, and the policies themselves stay as written for real clouds.
 */
import { ValidationError, type ValidationIssue } from '../errors.js';
import type { RolePolicy, ServerPolicies } from './policy.js';
import { APT_REPOSITORIES, distributionName, distributionVersionFor, resolveRuntime } from './runtimes.js';

/** Which third-party repositories the servers can reach, and why not the others. */
export interface RepositoryReach {
  /**
   * The third-party apt repositories (names of APT_REPOSITORIES: `sury`, `adoptium`) the servers
   * can reach: `all` on a cloud with a way to the internet, `none` offline, or the names that are.
   */
  thirdPartyRepositories: 'all' | 'none' | readonly string[];
  /** Why the others cannot be reached, as the notes say it: "offline", "no internet gateway". */
  reason: string;
}

/** A real cloud: every repository the policies name is reachable; nothing is substituted. */
export const ALL_REPOSITORIES_REACHABLE: RepositoryReach = { thirdPartyRepositories: 'all', reason: 'reachable' };
/** The offline world: no third-party repository can be reached, only what the image holds. */
export const OFFLINE_REPOSITORIES: RepositoryReach = { thirdPartyRepositories: 'none', reason: 'offline' };

/** One runtime taken from the distribution instead of the repository its policy names. */
export interface RuntimeSubstitution {
  role: string;
  /** The runtime in the policies: `roles.web.runtimes[1]`. */
  path: string;
  language: 'java' | 'php';
  /** What the policy asks for. */
  requested: { version: string; repository: string };
  /** What the servers get instead: the distribution's version and its packages. */
  substituted: { version: string; packages: string[] };
  /** nginx sites of the role whose PHP version followed the substitution (PHP only). */
  sites: string[];
  /** The substitution in one line, for a report. */
  note: string;
}

export interface RuntimeSources {
  /** The policies to render: the input unchanged when nothing had to be substituted (a copy otherwise). */
  policies: ServerPolicies;
  substitutions: RuntimeSubstitution[];
  /** One human-readable line per substituted runtime and per nginx site that followed it. */
  notes: string[];
}

const LANGUAGE = { java: 'Java', php: 'PHP' } as const;

function reachable(repository: string, reach: RepositoryReach): boolean {
  if (reach.thirdPartyRepositories === 'all') return true;
  if (reach.thirdPartyRepositories === 'none') return false;
  return reach.thirdPartyRepositories.includes(repository);
}

/**
 * The policies with every runtime whose repository cannot be reached taken from the distribution
 * instead (the same version if it ships it, else its newest), nginx sites passing PHP to the
 * substituted PHP-FPM, and a note for each. A runtime the distribution has no version of at all
 * is a ValidationError: the servers could not converge, so nothing is quietly left out.
 */
export function substituteUnreachableRuntimes(policies: ServerPolicies, reach: RepositoryReach): RuntimeSources {
  const substitutions: RuntimeSubstitution[] = [];
  const notes: string[] = [];
  const issues: ValidationIssue[] = [];
  const roles: Record<string, RolePolicy> = {};
  for (const [role, policy] of Object.entries(policies.roles)) {
    const runtimes: RolePolicy['runtimes'] = [];
    /** PHP versions of this role that moved: 5.6 -> 8.2. */
    const phpMoves = new Map<string, string>();
    const here: RuntimeSubstitution[] = [];
    policy.runtimes.forEach((runtime, index) => {
      const path = `roles.${role}.runtimes[${index}]`;
      if (runtime.repository === undefined || reachable(runtime.repository, reach) || !(runtime.repository in APT_REPOSITORIES)) {
        runtimes.push(runtime);
        return;
      }
      const version = distributionVersionFor(runtime.language, runtime.version, policies.os);
      if (version === undefined) {
        issues.push({
          path: `${path}.repository`,
          message: `${runtime.repository} is unreachable (${reach.reason}) and ${policies.os} ships no ${LANGUAGE[runtime.language]}`,
          fix: `make ${runtime.repository} reachable, or remove the runtime`,
        });
        runtimes.push(runtime);
        return;
      }
      const substitute = { language: runtime.language, version, modules: [...runtime.modules] };
      // Two runtimes that land on one version (PHP 5.6 and 7.4 from Sury, both Debian's 8.2) are one, with both's modules.
      const same = runtimes.findIndex((other) => other.language === substitute.language && other.version === version && other.repository === undefined);
      const merged = runtimes[same];
      if (merged) runtimes[same] = { ...merged, modules: [...new Set([...merged.modules, ...substitute.modules])] };
      else runtimes.push(substitute);
      if (runtime.language === 'php') phpMoves.set(runtime.version, version);
      const packages = resolveRuntime(substitute, policies.os, path).packages;
      const note = `${role}: ${LANGUAGE[runtime.language]} ${runtime.version} from ${runtime.repository} → ${distributionName(policies.os)}'s ${LANGUAGE[runtime.language]} ${version} (${runtime.repository} unreachable ${reach.reason})`;
      here.push({ role, path, language: runtime.language, requested: { version: runtime.version, repository: runtime.repository }, substituted: { version, packages }, sites: [], note });
    });
    let nginx = policy.nginx;
    if (nginx && phpMoves.size > 0) {
      nginx = {
        sites: nginx.sites.map((site) => {
          const moved = site.php === undefined ? undefined : phpMoves.get(site.php);
          if (moved === undefined || site.php === undefined) return site;
          here.find((entry) => entry.language === 'php' && entry.requested.version === site.php)?.sites.push(site.name);
          return { ...site, php: moved };
        }),
      };
    }
    for (const entry of here) {
      substitutions.push(entry);
      notes.push(entry.note);
      for (const site of entry.sites) notes.push(`${role}: nginx site ${site} passes PHP to PHP-FPM ${entry.substituted.version} instead of ${entry.requested.version}`);
    }
    roles[role] = here.length === 0 ? policy : { ...policy, runtimes, ...(nginx ? { nginx } : {}) };
  }
  if (issues.length > 0) throw new ValidationError(`${issues.length} runtime(s) cannot be installed: their repository is unreachable (${reach.reason}) and the distribution ships no substitute.`, { issues });
  return { policies: substitutions.length === 0 ? policies : { ...policies, roles }, substitutions, notes };
}
