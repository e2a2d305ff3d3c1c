/**
 * Server policies to Puppet manifests, one per role, with Puppet's built-in resource types only
 * (group, user, file, package, service, exec), so they apply with no module installed.
 *
 * Secrets never appear in a manifest: a secret is read at apply time from a fact
 * (`$facts['armada_secret_<name>']`) that the apply command sets from a root-only file, and is
 * wrapped in Sensitive so Puppet redacts it from logs and reports.
 */
import { resolveRuntime, templateParts, type AptRepository, type PolicyValue, type RenderedArtifact, type RolePolicy, type ServerPolicies } from '@armada/core';

/** Where the artifacts go on the host. */
export const PUPPET_ROOT = '/etc/armada/puppet';

/** A Puppet single-quoted string: only `\` and `'` need escaping, nothing is interpolated. */
export function quote(text: string): string {
  return `'${text.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
}

/** A shell single-quoted word. */
function shellWord(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

export const secretFact = (name: string) => `armada_secret_${name.toLowerCase()}`;

/** A policy value as a Puppet expression: literal text, a Sensitive fact, or a resolved output. */
function expression(value: PolicyValue, values: ReadonlyMap<string, string>): string {
  if (typeof value === 'string') return quote(value);
  if ('secret' in value) return `Sensitive($facts['${secretFact(value.secret)}'])`;
  const key = `${value.output.instance}.${value.output.value}`;
  const resolved = values.get(key);
  if (resolved === undefined) throw new Error(`The output ${key} was not resolved before rendering.`);
  return quote(resolved);
}

/** Text for a Puppet double-quoted string, where `\`, `"` and `$` are special. */
const doubleQuoted = (text: string) => text.replace(/[\\"$]/g, (character) => `\\${character}`);
/** Inside shell single quotes, a quote is written '\''. */
const shellQuoted = (text: string) => text.replaceAll("'", "'\\''");

/** A value inside NAME='...' in a double-quoted Puppet string; a secret is escaped when applied. */
function environmentFragment(value: PolicyValue, values: ReadonlyMap<string, string>): string {
  if (typeof value === 'string') return doubleQuoted(shellQuoted(value));
  if ('secret' in value) return `\${regsubst($facts['${secretFact(value.secret)}'], "'", "'\\\\\\\\''", 'G')}`;
  const resolved = values.get(`${value.output.instance}.${value.output.value}`);
  if (resolved === undefined) throw new Error(`The output ${value.output.instance}.${value.output.value} was not resolved before rendering.`);
  return doubleQuoted(shellQuoted(resolved));
}

/** A template as a double-quoted Puppet string: text kept, {{NAME}} filled, Sensitive if a secret is used. */
function templateExpression(template: string, vars: Record<string, PolicyValue>, values: ReadonlyMap<string, string>): string {
  let secretUsed = false;
  const body = templateParts(template)
    .map((part) => {
      if ('text' in part) return doubleQuoted(part.text);
      const value = vars[part.name] as PolicyValue;
      if (typeof value === 'string') return doubleQuoted(value);
      if ('secret' in value) {
        secretUsed = true;
        return `\${facts['${secretFact(value.secret)}']}`;
      }
      return doubleQuoted(values.get(`${value.output.instance}.${value.output.value}`) ?? '');
    })
    .join('');
  return secretUsed ? `Sensitive("${body}")` : `"${body}"`;
}

/** `Type['title']`, for require, notify and subscribe. */
const ref = (type: string, title: string) => `${type}[${quote(title)}]`;

/**
 * The packages of one role, each declared once (Puppet refuses a second declaration of one
 * package, and a `package` names exactly one: its `name` cannot be a list), with what must come
 * before it (the apt update after a repository is added).
 */
class Packages {
  private readonly wanted = new Map<string, Set<string>>();

  add(names: readonly string[], requires: readonly string[] = []): void {
    for (const name of names) {
      const before = this.wanted.get(name) ?? new Set<string>();
      for (const reference of requires) before.add(reference);
      this.wanted.set(name, before);
    }
  }

  resources(): string[] {
    return [...this.wanted].map(([name, requires]) =>
      resource('package', name, [['ensure', quote('installed')], ...(requires.size > 0 ? ([['require', requires.size === 1 ? [...requires].join('') : `[${[...requires].join(', ')}]`]] as Array<[string, string]>) : [])]),
    );
  }
}

/**
 * A service of Debian's packages, by the name both init systems know it by. No provider is
 * named: Puppet 7 picks systemd where PID 1 is systemd (real clouds) and Debian's init scripts
 * (`debian`, from /etc/init.d with update-rc.d) where it is not (containers, the lab's hosts).
 */
function packagedService(name: string, requires: readonly string[], extra: Array<[string, string]> = []): string {
  return resource('service', name, [['ensure', quote('running')], ['enable', 'true'], ...extra, ...(requires.length > 0 ? ([['require', requires.length === 1 ? (requires[0] as string) : `[${requires.join(', ')}]`]] as Array<[string, string]>) : [])]);
}

/** Redis from Debian's package, with Armada's settings in a file that redis.conf includes last. */
function redisResources(policy: RolePolicy, values: ReadonlyMap<string, string>, packages: Packages): string[] {
  const redis = policy.redis;
  if (!redis) return [];
  const host = redis.replicaOf ? (typeof redis.replicaOf.host === 'string' ? redis.replicaOf.host : 'output' in redis.replicaOf.host ? (values.get(`${redis.replicaOf.host.output.instance}.${redis.replicaOf.host.output.value}`) ?? '') : '') : undefined;
  const settings = [`bind ${redis.bind.join(' ')}`, `port ${redis.port}`, ...(host ? [`replicaof ${host} ${redis.replicaOf?.port}`] : []), ...(redis.maxmemory ? [`maxmemory ${redis.maxmemory}`] : [])];
  const include = 'include /etc/redis/armada.conf';
  packages.add(['redis-server']);
  return [
    resource('file', '/etc/redis/armada.conf', [['ensure', quote('file')], ['content', quote(`${settings.join('\n')}\n`)], ['require', ref('Package', 'redis-server')], ['notify', ref('Service', 'redis-server')]]),
    resource('exec', 'redis.conf includes armada.conf', [
      ['command', quote(`echo ${shellWord(include)} >> /etc/redis/redis.conf`)],
      ['unless', quote(`grep -qx ${shellWord(include)} /etc/redis/redis.conf`)],
      ['path', list(['/usr/bin', '/bin'])],
      ['provider', quote('shell')],
      ['require', ref('Package', 'redis-server')],
      ['notify', ref('Service', 'redis-server')],
    ]),
    packagedService('redis-server', [ref('Package', 'redis-server')]),
  ];
}

function isSecret(value: PolicyValue): boolean {
  return typeof value !== 'string' && 'secret' in value;
}

/** `{ attribute => value, ... }` aligned the way Puppet's style guide likes it. */
function resource(type: string, title: string, attributes: Array<[string, string]>): string {
  const width = Math.max(...attributes.map(([name]) => name.length));
  const body = attributes.map(([name, value]) => `  ${name.padEnd(width)} => ${value},`).join('\n');
  return `${type} { ${quote(title)}:\n${body}\n}`;
}

const list = (items: readonly string[]) => `[${items.map(quote).join(', ')}]`;

/** `require => Type['a', 'b']`, or nothing when there is nothing to refer to. */
function reference(attribute: string, type: string, titles: readonly string[]): Array<[string, string]> {
  return titles.length === 0 ? [] : [[attribute, `${type}[${titles.map(quote).join(', ')}]`]];
}

/** The mysql client, run as root over the server's local socket. */
const MYSQL = 'mysql --protocol=socket -u root -N -B';

/** MariaDB, Debian's MySQL: its package, and its service. */
const MYSQL_PACKAGE = 'mariadb-server';
const MYSQL_SERVICE = 'mariadb';

/**
 * The MySQL server: installed and running. Whether it runs is asked of the server itself (does it
 * answer on its socket), which is what every exec after it needs: Debian's init script asks with
 * the credentials of /etc/mysql/debian.cnf, which not every installation has.
 */
function mysqlServerResources(policy: RolePolicy, packages: Packages): string[] {
  if (!policy.mysql) return [];
  packages.add([MYSQL_PACKAGE]);
  return [packagedService(MYSQL_SERVICE, [ref('Package', MYSQL_PACKAGE)], [['status', quote('/usr/bin/mysqladmin --protocol=socket -u root ping')]])];
}

/** `GRANT A, B ON x TO`, as SHOW GRANTS prints it, holds each privilege: a shell test over $grants. */
function grantHeld(privileges: readonly string[], on: string): string {
  // SHOW GRANTS lists one line per object; the privileges of a line are comma-separated, in the server's order.
  const line = `grep -F ${shellWord(` ON ${on} TO `)}`;
  return privileges.map((privilege) => `printf '%s\\n' "$grants" | ${line} | grep -qE ${shellWord(`^GRANT (.*, )?${privilege}(, .*)? ON `)}`).join(' && ');
}

function mysqlResources(policy: RolePolicy): string[] {
  const mysql = policy.mysql;
  if (!mysql) return [];
  const server = ref('Service', MYSQL_SERVICE);
  const blocks: string[] = [];
  for (const database of mysql.databases) {
    blocks.push(
      resource('exec', `mysql database ${database}`, [
        ['command', quote(`${MYSQL} -e ${shellWord(`CREATE DATABASE IF NOT EXISTS \`${database}\` CHARACTER SET utf8mb4`)}`)],
        ['unless', quote(`${MYSQL} -e ${shellWord(`SHOW DATABASES LIKE '${database}'`)} | grep -qx ${shellWord(database)}`)],
        ['path', list(['/usr/bin', '/bin'])],
        ['provider', quote('shell')],
        ['require', server],
      ]),
    );
  }
  for (const user of mysql.users) {
    const account = `'${user.name}'@'${user.host}'`;
    // The password reaches mysql through the environment of the shell, never the manifest.
    blocks.push(
      resource('exec', `mysql user ${user.name}@${user.host}`, [
        // Escaped for an SQL string in the shell at apply time: backslashes and quotes doubled.
        ['command', quote(`pw=$(printf '%s' "$ARMADA_PASSWORD" | sed -e 's/\\\\/\\\\\\\\/g' -e "s/'/''/g"); ${MYSQL} -e "CREATE USER IF NOT EXISTS ${account} IDENTIFIED BY '$pw'"`)],
        ['unless', quote(`${MYSQL} -e ${shellWord(`SELECT 1 FROM mysql.user WHERE User='${user.name}' AND Host='${user.host}'`)} | grep -q 1`)],
        ['environment', `["ARMADA_PASSWORD=\${facts['${secretFact(user.password.secret)}']}"]`],
        ['path', list(['/usr/bin', '/bin'])],
        ['provider', quote('shell')],
        ['require', mysql.databases.length > 0 ? `[${server}, Exec[${mysql.databases.map((database) => quote(`mysql database ${database}`)).join(', ')}]]` : server],
      ]),
    );
    for (const grant of user.grants) {
      const on = grant.database === '*' ? '*.*' : `\`${grant.database}\`.*`;
      const privileges = grant.privileges.join(', ');
      blocks.push(
        resource('exec', `mysql grant ${privileges} on ${grant.database} to ${user.name}@${user.host}`, [
          ['command', quote(`${MYSQL} -e ${shellWord(`GRANT ${privileges} ON ${on} TO ${account}`)}`)],
          // Every privilege on that object, not merely a line for it: a new account already has `GRANT USAGE ON *.* TO`.
          ['unless', quote(`grants=$(${MYSQL} -e ${shellWord(`SHOW GRANTS FOR ${account}`)}) && ${grantHeld(grant.privileges, on)}`)],
          ['path', list(['/usr/bin', '/bin'])],
          ['provider', quote('shell')],
          ['require', ref('Exec', `mysql user ${user.name}@${user.host}`)],
        ]),
      );
    }
  }
  return blocks;
}

/** Apt sources, packages and services (PHP-FPM) of the role's language runtimes, resolved for the servers' OS. */
function runtimeResources(policy: RolePolicy, os: string, role: string, packages: Packages): string[] {
  const blocks: string[] = [];
  const repositories = new Map<string, AptRepository & { codename: string }>();
  const resolvedRuntimes = policy.runtimes.map((runtime, index) => {
    const resolved = resolveRuntime(runtime, os, `roles.${role}.runtimes[${index}]`);
    if (resolved.repository) repositories.set(resolved.repository.name, resolved.repository);
    return resolved;
  });
  for (const repository of repositories.values()) {
    const key = `/etc/apt/keyrings/${repository.name}.asc`;
    blocks.push(
      resource('exec', `apt key ${repository.name}`, [
        ['command', quote(`install -d -m 0755 /etc/apt/keyrings && curl -fsSL ${shellWord(repository.keyUrl)} -o ${key}`)],
        ['creates', quote(key)],
        ['path', list(['/usr/bin', '/bin'])],
        ['provider', quote('shell')],
      ]),
      resource('file', `/etc/apt/sources.list.d/armada-${repository.name}.list`, [
        ['ensure', quote('file')],
        ['content', quote(`${repository.source.replace('$codename', repository.codename)}\n`)],
        ['require', ref('Exec', `apt key ${repository.name}`)],
        ['notify', ref('Exec', 'apt-get update for armada')],
      ]),
    );
  }
  if (repositories.size > 0) {
    blocks.push(resource('exec', 'apt-get update for armada', [['command', quote('apt-get update -qq')], ['refreshonly', 'true'], ['path', list(['/usr/bin', '/bin'])]]));
  }
  for (const resolved of resolvedRuntimes) {
    packages.add(resolved.packages, resolved.repository ? [ref('Exec', 'apt-get update for armada')] : []);
    for (const service of resolved.services) {
      // PHP-FPM's package is named as its service is: php8.2-fpm.
      const owner = resolved.packages.includes(service) ? [ref('Package', service)] : resolved.packages.map((name) => ref('Package', name));
      blocks.push(packagedService(service, owner));
    }
  }
  return blocks;
}

function nginxResources(policy: RolePolicy, packages: Packages): string[] {
  if (!policy.nginx) return [];
  packages.add(['nginx']);
  const blocks: string[] = [];
  for (const site of policy.nginx.sites) {
    // Debian's PHP-FPM listens on /run/php/php<version>-fpm.sock (its pool's `listen`).
    const php = site.php ? `\n    location ~ \\.php$ {\n        include snippets/fastcgi-php.conf;\n        fastcgi_pass unix:/run/php/php${site.php}-fpm.sock;\n    }` : '';
    const config = `server {\n    listen ${site.listen};\n    server_name ${site.serverNames.join(' ')};\n    root ${site.root};\n    index index.html index.php;${php}\n}\n`;
    blocks.push(
      // Single-quoted: the configuration's `$` and `\` reach nginx as written.
      resource('file', `/etc/nginx/sites-available/${site.name}`, [['ensure', quote('file')], ['content', quote(config)], ['require', ref('Package', 'nginx')], ['notify', ref('Service', 'nginx')]]),
      resource('file', `/etc/nginx/sites-enabled/${site.name}`, [['ensure', quote('link')], ['target', quote(`/etc/nginx/sites-available/${site.name}`)], ['require', ref('Package', 'nginx')], ['notify', ref('Service', 'nginx')]]),
    );
  }
  blocks.push(packagedService('nginx', [ref('Package', 'nginx')]));
  return blocks;
}

function appResources(policy: RolePolicy, packages: Packages): string[] {
  const blocks: string[] = [];
  if (policy.apps.length > 0) packages.add(['git']);
  for (const app of policy.apps) {
    const at = shellWord(app.path);
    const managedOwner = policy.users.some((user) => user.name === app.owner);
    // git runs as the owner, with the owner's home (not root's, which it cannot read) and from a directory it can enter.
    const asOwner: Array<[string, string]> = [
      ['user', quote(app.owner)],
      ['cwd', quote('/')],
      ['path', list(['/usr/bin', '/bin'])],
      ['provider', quote('shell')],
    ];
    const home = `HOME=$(getent passwd ${shellWord(app.owner)} | cut -d: -f6); export HOME; `;
    // The ref as a commit: the remote branch of that name, else a tag or commit.
    const target = `$(git -C ${at} rev-parse --verify --quiet ${shellWord(`origin/${app.ref}^{commit}`)} || git -C ${at} rev-parse --verify --quiet ${shellWord(`${app.ref}^{commit}`)})`;
    blocks.push(
      // The checkout's directory, the owner's: the owner cannot make it in a directory of root's (/srv).
      resource('file', app.path, [['ensure', quote('directory')], ['owner', quote(app.owner)], ['mode', quote('0755')], ...(managedOwner ? ([['require', ref('User', app.owner)]] as Array<[string, string]>) : [])]),
      resource('exec', `deploy ${app.name}: clone`, [
        ['command', quote(`${home}git clone --quiet ${shellWord(app.repository)} ${at}`)],
        ['creates', quote(`${app.path}/.git`)],
        ...asOwner,
        ['require', `[${ref('Package', 'git')}, ${ref('File', app.path)}]`],
      ]),
      resource('exec', `deploy ${app.name}: checkout ${app.ref}`, [
        ['command', quote(`${home}git -C ${at} fetch --quiet --tags origin && git -C ${at} checkout --quiet --detach "${target}"`)],
        // Fetched first, so a branch that moved upstream is deployed again.
        ['unless', quote(`${home}git -C ${at} fetch --quiet --tags origin && test "$(git -C ${at} rev-parse HEAD)" = "${target}"`)],
        ...asOwner,
        ['require', ref('Exec', `deploy ${app.name}: clone`)],
      ]),
    );
  }
  return blocks;
}

/** Primary and replica settings, and the replica's link to its primary (MariaDB GTID). */
function replicationResources(policy: RolePolicy, values: ReadonlyMap<string, string>): string[] {
  const mysql = policy.mysql;
  if (!mysql || mysql.role === 'standalone') return [];
  const settings = [`[mysqld]`, `server-id = ${mysql.serverId}`, 'log_bin = mysql-bin', 'binlog_format = ROW', 'bind-address = 0.0.0.0', ...(mysql.role === 'replica' ? ['read_only = 1', 'relay_log = relay-bin'] : [])];
  const blocks = [
    // Read after Debian's 50-server.cnf (which binds to 127.0.0.1): a change restarts the server.
    resource('file', '/etc/mysql/mariadb.conf.d/90-armada-replication.cnf', [
      ['ensure', quote('file')],
      ['content', quote(`${settings.join('\n')}\n`)],
      ['require', ref('Package', MYSQL_PACKAGE)],
      ['notify', ref('Service', MYSQL_SERVICE)],
    ]),
  ];
  if (mysql.role === 'replica' && mysql.source && mysql.replicationUser) {
    const source = typeof mysql.source === 'string' ? mysql.source : 'output' in mysql.source ? (values.get(`${mysql.source.output.instance}.${mysql.source.output.value}`) ?? '') : '';
    blocks.push(
      resource('exec', 'mysql replica of its primary', [
        ['command', quote(`pw=$(printf '%s' "$ARMADA_PASSWORD" | sed -e 's/\\\\/\\\\\\\\/g' -e "s/'/''/g"); ${MYSQL} -e "CHANGE MASTER TO MASTER_HOST='${source}', MASTER_USER='${mysql.replicationUser.name}', MASTER_PASSWORD='$pw', MASTER_USE_GTID=slave_pos; START SLAVE"`)],
        ['unless', quote(`${MYSQL} -e 'SHOW SLAVE STATUS' | grep -q .`)],
        ['environment', `["ARMADA_PASSWORD=\${facts['${secretFact(mysql.replicationUser.password.secret)}']}"]`],
        ['path', list(['/usr/bin', '/bin'])],
        ['provider', quote('shell')],
        ['require', ref('Service', MYSQL_SERVICE)],
      ]),
    );
  }
  return blocks;
}

export function renderRole(role: string, policy: RolePolicy, values: ReadonlyMap<string, string>, os = 'debian-12'): string {
  const blocks: string[] = [
    `# Rendered by Armada for role "${role}". Edit the server policies and render again rather than this file.`,
    '# Built-in resource types only: applies with `puppet apply` and no module.',
  ];
  const packages = new Packages();
  for (const group of policy.groups) blocks.push(resource('group', group, [['ensure', quote('present')]]));
  for (const user of policy.users) {
    const home = `/home/${user.name}`;
    blocks.push(
      resource('user', user.name, [
        ['ensure', quote('present')],
        ['managehome', 'true'],
        ['home', quote(home)],
        ['shell', quote(user.shell)],
        ['groups', list(user.groups)],
        ...reference('require', 'Group', user.groups.filter((group) => policy.groups.includes(group))),
      ]),
    );
    if (user.sshKeys.length > 0) {
      blocks.push(
        resource('file', `${home}/.ssh`, [
          ['ensure', quote('directory')],
          ['owner', quote(user.name)],
          ['group', quote(user.name)],
          ['mode', quote('0700')],
          ['require', ref('User', user.name)],
        ]),
        resource('file', `${home}/.ssh/authorized_keys`, [
          ['ensure', quote('file')],
          ['owner', quote(user.name)],
          ['group', quote(user.name)],
          ['mode', quote('0600')],
          ['content', quote(`${user.sshKeys.join('\n')}\n`)],
        ]),
      );
    }
  }
  packages.add(policy.packages);
  for (const file of policy.files) {
    blocks.push(
      resource('file', file.path, [
        ['ensure', quote('file')],
        ['owner', quote(file.owner)],
        ['group', quote(file.group)],
        ['mode', quote(file.mode.padStart(4, '0'))],
        ['content', file.template !== undefined ? templateExpression(file.template, file.vars, values) : expression(file.content as PolicyValue, values)],
      ]),
    );
  }
  const variables = Object.entries(policy.environment);
  if (variables.length > 0) {
    const secret = variables.some(([, value]) => isSecret(value));
    // NAME='value' lines: sourced by sh (profile.d) and read by systemd (EnvironmentFile).
    const lines = variables.map(([name, value]) => `${name}='${environmentFragment(value, values)}'\\n`).join('');
    blocks.push(
      resource('file', '/etc/armada', [['ensure', quote('directory')], ['mode', quote('0755')]]),
      resource('file', '/etc/armada/environment', [
        ['ensure', quote('file')],
        ['mode', quote(secret ? '0600' : '0644')],
        ['content', secret ? `Sensitive("${lines}")` : `"${lines}"`],
        ['require', ref('File', '/etc/armada')],
      ]),
      resource('file', '/etc/profile.d/armada.sh', [
        ['ensure', quote('file')],
        ['mode', quote('0644')],
        ['content', quote('# Armada: the environment of this host, for login shells.\nset -a; [ -r /etc/armada/environment ] && . /etc/armada/environment; set +a\n')],
      ]),
    );
  }
  for (const service of policy.services) {
    const custom = service.start !== undefined;
    blocks.push(
      resource('service', service.name, [
        ['ensure', quote(service.ensure)],
        ...(custom
          ? ([
              // No init system entry: Puppet's base provider runs these commands.
              ['provider', quote('base')],
              ['start', quote(service.start as string)],
              ...(service.status ? ([['status', quote(service.status)]] as Array<[string, string]>) : []),
              ...(service.stop ? ([['stop', quote(service.stop)]] as Array<[string, string]>) : []),
            ] as Array<[string, string]>)
          : ([['enable', String(service.enable)]] as Array<[string, string]>)),
        ...reference('require', 'Package', policy.packages),
      ]),
    );
  }
  const sections = [
    ...runtimeResources(policy, os, role, packages),
    ...nginxResources(policy, packages),
    ...appResources(policy, packages),
    ...redisResources(policy, values, packages),
    ...replicationResources(policy, values),
    ...mysqlServerResources(policy, packages),
    ...mysqlResources(policy),
  ];
  blocks.push(...packages.resources(), ...sections);
  return `${blocks.join('\n\n')}\n`;
}

/** Every role's manifest, plus the directory for the environment file. */
export function renderPuppet(policies: ServerPolicies, values: ReadonlyMap<string, string>): RenderedArtifact[] {
  return Object.entries(policies.roles).map(([role, policy]) => ({ path: `manifests/${role}.pp`, content: renderRole(role, policy, values, policies.os) }));
}
