/**
 * Language runtimes by OS family: which packages give Java N or PHP N on a distribution, and where
 * they come from. Old versions are no longer shipped by current distributions (Debian 12 has Java
 * 17 and PHP 8.2); asking for one is a clear error unless the policy names a repository that has it.
 */
import { ValidationError } from '../errors.js';

export interface AptRepository {
  /** Short name used in policies: `adoptium`, `sury`. */
  name: string;
  /** The apt source line, with `$codename` for the distribution's codename. */
  source: string;
  /** URL of the repository's signing key (ASCII armoured). */
  keyUrl: string;
}

export const APT_REPOSITORIES: Readonly<Record<string, AptRepository>> = {
  adoptium: { name: 'adoptium', source: 'deb [signed-by=/etc/apt/keyrings/adoptium.asc] https://packages.adoptium.net/artifactory/deb $codename main', keyUrl: 'https://packages.adoptium.net/artifactory/api/gpg/key/public' },
  sury: { name: 'sury', source: 'deb [signed-by=/etc/apt/keyrings/sury.asc] https://packages.sury.org/php/ $codename main', keyUrl: 'https://packages.sury.org/php/apt.gpg' },
};

interface Family {
  codename: string;
  /** The distribution's name in notes: "Debian's PHP 8.2". */
  distribution: string;
  /** version -> package names, as the distribution ships them. */
  java: Record<string, string[]>;
  php: Record<string, (modules: string[]) => string[]>;
}

const php = (version: string) => (modules: string[]) => [`php${version}-fpm`, `php${version}-cli`, ...modules.map((module) => `php${version}-${module}`)];

export const OS_FAMILIES: Readonly<Record<string, Family>> = {
  'debian-11': { codename: 'bullseye', distribution: 'Debian', java: { '11': ['openjdk-11-jre-headless'], '17': ['openjdk-17-jre-headless'] }, php: { '7.4': php('7.4') } },
  'debian-12': { codename: 'bookworm', distribution: 'Debian', java: { '17': ['openjdk-17-jre-headless'] }, php: { '8.2': php('8.2') } },
  'ubuntu-22.04': { codename: 'jammy', distribution: 'Ubuntu', java: { '8': ['openjdk-8-jre-headless'], '11': ['openjdk-11-jre-headless'], '17': ['openjdk-17-jre-headless'] }, php: { '8.1': php('8.1') } },
  'ubuntu-24.04': { codename: 'noble', distribution: 'Ubuntu', java: { '8': ['openjdk-8-jre-headless'], '17': ['openjdk-17-jre-headless'], '21': ['openjdk-21-jre-headless'] }, php: { '8.3': php('8.3') } },
};

/** From a repository: Temurin builds of every Java, Sury builds of every PHP. */
const FROM_REPOSITORY: Record<string, (version: string, modules: string[]) => string[]> = {
  adoptium: (version) => [`temurin-${version}-jre`],
  sury: (version, modules) => php(version)(modules),
};

export interface RuntimeRequest {
  language: 'java' | 'php';
  version: string;
  modules?: string[];
  /** A repository that ships the version when the distribution does not. */
  repository?: string;
}

export interface ResolvedRuntime {
  packages: string[];
  /**
   * The services the runtime runs, by the name both init systems know them by: PHP's FPM
   * (`php8.2-fpm`), which nginx sites with `php` pass requests to. Java runs none.
   */
  services: string[];
  repository?: AptRepository & { codename: string };
}

/** The services of a runtime: PHP-FPM for PHP (its socket is /run/php/php<version>-fpm.sock), none for Java. */
const runtimeServices = (runtime: RuntimeRequest) => (runtime.language === 'php' ? [`php${runtime.version}-fpm`] : []);

/** Versions as numbers, part by part: "8.10" is newer than "8.9". */
function compareVersions(left: string, right: string): number {
  const a = left.split('.').map(Number);
  const b = right.split('.').map(Number);
  for (let index = 0; index < Math.max(a.length, b.length); index++) {
    const difference = (a[index] ?? 0) - (b[index] ?? 0);
    if (difference !== 0) return difference;
  }
  return 0;
}

/** The versions of a language an OS ships itself, oldest first; [] for an OS without a runtime table. */
export function distributionVersions(language: RuntimeRequest['language'], os: string): string[] {
  const family = OS_FAMILIES[os];
  if (!family) return [];
  return Object.keys(language === 'java' ? family.java : family.php).sort(compareVersions);
}

/**
 * The version of a language the OS itself ships closest to a wanted one: the same version if it
 * ships it, else its newest. Undefined when it ships none (or the OS has no runtime table).
 */
export function distributionVersionFor(language: RuntimeRequest['language'], version: string, os: string): string | undefined {
  const versions = distributionVersions(language, os);
  return versions.includes(version) ? version : versions.at(-1);
}

/** The distribution's name for notes: `Debian` for debian-12; the OS id itself when unknown. */
export function distributionName(os: string): string {
  return OS_FAMILIES[os]?.distribution ?? os;
}

export function resolveRuntime(runtime: RuntimeRequest, os: string, path: string): ResolvedRuntime {
  const family = OS_FAMILIES[os];
  if (!family) {
    throw new ValidationError(`No runtime table for the operating system "${os}".`, {
      issues: [{ path, message: `unknown operating system "${os}"`, fix: `use one of: ${Object.keys(OS_FAMILIES).join(', ')}` }],
    });
  }
  if (runtime.repository !== undefined) {
    const repository = APT_REPOSITORIES[runtime.repository];
    const packages = FROM_REPOSITORY[runtime.repository]?.(runtime.version, runtime.modules ?? []);
    if (!repository || !packages) {
      throw new ValidationError(`Unknown repository "${runtime.repository}".`, { issues: [{ path: `${path}.repository`, message: `unknown repository "${runtime.repository}"`, fix: `use one of: ${Object.keys(APT_REPOSITORIES).join(', ')}` }] });
    }
    return { packages, services: runtimeServices(runtime), repository: { ...repository, codename: family.codename } };
  }
  const shipped = runtime.language === 'java' ? family.java[runtime.version] : family.php[runtime.version]?.(runtime.modules ?? []);
  if (!shipped) {
    const versions = Object.keys(runtime.language === 'java' ? family.java : family.php).join(', ');
    const repository = runtime.language === 'java' ? 'adoptium' : 'sury';
    throw new ValidationError(`${os} does not ship ${runtime.language === 'java' ? 'Java' : 'PHP'} ${runtime.version}.`, {
      issues: [
        {
          path,
          message: `${os} ships ${runtime.language === 'java' ? 'Java' : 'PHP'} ${versions} only`,
          fix: `use version ${versions}, or add repository: ${repository} to take ${runtime.version} from a third-party repository`,
        },
      ],
    });
  }
  return { packages: shipped, services: runtimeServices(runtime) };
}
