/**
 * Server policies to a Chef cookbook (`cookbooks/armada`): one recipe per role, with Chef's
 * built-in resources only (group, user, directory, file, link, package, service, execute, git,
 * apt_repository), so it converges with no other cookbook.
 *
 * Secrets never appear in a recipe: they are node attributes (`node['armada']['secrets'][NAME]`)
 * from a root-only JSON file given to chef-client at converge time, on resources marked sensitive.
 */
import { resolveRuntime, templateParts, type PolicyValue, type RenderedArtifact, type RolePolicy, type ServerPolicies } from '@armada/core';

export const CHEF_ROOT = '/etc/armada/chef';

/** A Ruby single-quoted string: only `\` and `'` are special. */
export function rubyString(text: string): string {
  return `'${text.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
}

const shellWord = (text: string) => `'${text.replaceAll("'", `'\\''`)}'`;
const secret = (name: string) => `node['armada']['secrets'][${rubyString(name)}]`;

/** A policy value as a Ruby expression. */
function expression(value: PolicyValue, values: ReadonlyMap<string, string>): { ruby: string; sensitive: boolean } {
  if (typeof value === 'string') return { ruby: rubyString(value), sensitive: false };
  if ('secret' in value) return { ruby: secret(value.secret), sensitive: true };
  const key = `${value.output.instance}.${value.output.value}`;
  const resolved = values.get(key);
  if (resolved === undefined) throw new Error(`The output ${key} was not resolved before rendering.`);
  return { ruby: rubyString(resolved), sensitive: false };
}

/** A template as Ruby string concatenation: text kept, {{NAME}} filled at converge time. */
function templateExpression(template: string, vars: Record<string, PolicyValue>, values: ReadonlyMap<string, string>): { ruby: string; sensitive: boolean } {
  let sensitive = false;
  const parts = templateParts(template).map((part) => {
    if ('text' in part) return rubyString(part.text);
    const value = expression(vars[part.name] as PolicyValue, values);
    sensitive ||= value.sensitive;
    return `${value.ruby}.to_s`;
  });
  return { ruby: parts.length > 0 ? parts.join(' + ') : "''", sensitive };
}

function block(type: string, name: string, properties: Array<[string, string]>): string {
  const body = properties.map(([property, value]) => `  ${property} ${value}`).join('\n');
  return `${type} ${rubyString(name)} do\n${body}\nend`;
}

const array = (items: readonly string[]) => `[${items.map(rubyString).join(', ')}]`;
const MYSQL = 'mysql --protocol=socket -u root -N -B';
/** The password comes from the environment, escaped for an SQL string in the shell. */
const escapedPassword = `pw=$(printf '%s' "$ARMADA_PASSWORD" | sed -e 's/\\\\/\\\\\\\\/g' -e "s/'/''/g")`;

export function renderRecipe(role: string, policy: RolePolicy, values: ReadonlyMap<string, string>, os = 'debian-12'): string {
  const blocks: string[] = [
    `# Rendered by Armada for role "${role}". Edit the server policies and render again rather than this file.`,
    '# Built-in resources only: converges with chef-client --local-mode and no other cookbook.',
  ];
  for (const group of policy.groups) blocks.push(block('group', group, [['action', ':create']]));
  for (const user of policy.users) {
    const home = `/home/${user.name}`;
    blocks.push(block('user', user.name, [['manage_home', 'true'], ['home', rubyString(home)], ['shell', rubyString(user.shell)]]));
    for (const group of user.groups) blocks.push(block('group', `${group} (members)`, [['group_name', rubyString(group)], ['members', array([user.name])], ['append', 'true'], ['action', ':modify']]));
    if (user.sshKeys.length > 0) {
      blocks.push(
        block('directory', `${home}/.ssh`, [['owner', rubyString(user.name)], ['group', rubyString(user.name)], ['mode', rubyString('0700')]]),
        block('file', `${home}/.ssh/authorized_keys`, [['owner', rubyString(user.name)], ['group', rubyString(user.name)], ['mode', rubyString('0600')], ['content', rubyString(`${user.sshKeys.join('\n')}\n`)]]),
      );
    }
  }
  if (policy.packages.length > 0) blocks.push(block('package', 'armada packages', [['package_name', array(policy.packages)]]));
  for (const file of policy.files) {
    const content = file.template !== undefined ? templateExpression(file.template, file.vars, values) : expression(file.content as PolicyValue, values);
    blocks.push(
      block('file', file.path, [
        ['owner', rubyString(file.owner)],
        ['group', rubyString(file.group)],
        ['mode', rubyString(file.mode.padStart(4, '0'))],
        ['content', content.ruby],
        ...(content.sensitive ? ([['sensitive', 'true']] as Array<[string, string]>) : []),
      ]),
    );
  }
  const variables = Object.entries(policy.environment);
  if (variables.length > 0) {
    const lines = variables.map(([name, value]) => {
      const { ruby } = expression(value, values);
      // NAME='value' with the value's single quotes escaped for sh, done in Ruby at converge time.
      return `"${name}='" + ${ruby}.to_s.gsub("'", %q('\\\\'')) + "'\\n"`;
    });
    const secretValues = variables.some(([, value]) => typeof value !== 'string' && 'secret' in value);
    blocks.push(
      block('directory', '/etc/armada', [['mode', rubyString('0755')]]),
      block('file', '/etc/armada/environment', [['mode', rubyString(secretValues ? '0600' : '0644')], ['content', lines.join(' + ')], ...(secretValues ? ([['sensitive', 'true']] as Array<[string, string]>) : [])]),
      block('file', '/etc/profile.d/armada.sh', [['mode', rubyString('0644')], ['content', rubyString('set -a; [ -r /etc/armada/environment ] && . /etc/armada/environment; set +a\n')]]),
    );
  }
  policy.runtimes.forEach((runtime, index) => {
    const resolved = resolveRuntime(runtime, os, `roles.${role}.runtimes[${index}]`);
    if (resolved.repository) {
      const [, uri] = /(https:\/\/\S+)/.exec(resolved.repository.source) ?? [];
      blocks.push(block('apt_repository', `armada-${resolved.repository.name}`, [['uri', rubyString(uri ?? '')], ['distribution', rubyString(resolved.repository.codename)], ['components', array(['main'])], ['key', array([resolved.repository.keyUrl])]]));
    }
    blocks.push(block('package', `${runtime.language} ${runtime.version}`, [['package_name', array(resolved.packages)]]));
  });
  if (policy.nginx) {
    blocks.push(block('package', 'nginx', []));
    for (const site of policy.nginx.sites) {
      const php = site.php ? `\n    location ~ \\.php$ {\n        include snippets/fastcgi-php.conf;\n        fastcgi_pass unix:/run/php/php${site.php}-fpm.sock;\n    }` : '';
      blocks.push(
        block('file', `/etc/nginx/sites-available/${site.name}`, [['content', rubyString(`server {\n    listen ${site.listen};\n    server_name ${site.serverNames.join(' ')};\n    root ${site.root};\n    index index.html index.php;${php}\n}\n`)], ['notifies', ":reload, 'service[nginx]', :delayed"]]),
        block('link', `/etc/nginx/sites-enabled/${site.name}`, [['to', rubyString(`/etc/nginx/sites-available/${site.name}`)], ['notifies', ":reload, 'service[nginx]', :delayed"]]),
      );
    }
    blocks.push(block('service', 'nginx', [['action', '[:enable, :start]']]));
  }
  if (policy.apps.length > 0) blocks.push(block('package', 'git', []));
  for (const app of policy.apps) {
    blocks.push(block('git', app.path, [['repository', rubyString(app.repository)], ['revision', rubyString(app.ref)], ['user', rubyString(app.owner)], ['action', ':sync']]));
  }
  for (const service of policy.services) {
    const custom = service.start !== undefined;
    blocks.push(
      block('service', service.name, [
        ...(custom
          ? ([
              ['start_command', rubyString(service.start as string)],
              ...(service.status ? ([['status_command', rubyString(service.status)]] as Array<[string, string]>) : []),
              ...(service.stop ? ([['stop_command', rubyString(service.stop)]] as Array<[string, string]>) : []),
            ] as Array<[string, string]>)
          : []),
        ['action', service.ensure === 'running' ? (custom ? '[:start]' : service.enable ? '[:enable, :start]' : '[:start]') : '[:stop]'],
      ]),
    );
  }
  if (policy.redis) {
    const redis = policy.redis;
    const host = redis.replicaOf ? expression(redis.replicaOf.host, values).ruby : undefined;
    const settings = [
      rubyString(`bind ${redis.bind.join(' ')}`),
      rubyString(`port ${redis.port}`),
      ...(host ? [`'replicaof ' + ${host}.to_s + ' ${redis.replicaOf?.port}'`] : []),
      ...(redis.maxmemory ? [rubyString(`maxmemory ${redis.maxmemory}`)] : []),
    ];
    const include = 'include /etc/redis/armada.conf';
    blocks.push(
      block('package', 'redis-server', []),
      block('file', '/etc/redis/armada.conf', [['content', `[${settings.join(', ')}].join("\\n") + "\\n"`], ['notifies', ":restart, 'service[redis-server]', :delayed"]]),
      block('execute', 'redis.conf includes armada.conf', [['command', rubyString(`echo ${shellWord(include)} >> /etc/redis/redis.conf`)], ['not_if', rubyString(`grep -qx ${shellWord(include)} /etc/redis/redis.conf`)], ['notifies', ":restart, 'service[redis-server]', :delayed"]]),
      block('service', 'redis-server', [['action', '[:enable, :start]']]),
    );
  }
  const mysql = policy.mysql;
  if (mysql && mysql.role !== 'standalone') {
    const settings = ['[mysqld]', `server-id = ${mysql.serverId}`, 'log_bin = mysql-bin', 'binlog_format = ROW', 'bind-address = 0.0.0.0', ...(mysql.role === 'replica' ? ['read_only = 1', 'relay_log = relay-bin'] : [])];
    blocks.push(
      block('file', '/etc/mysql/mariadb.conf.d/90-armada-replication.cnf', [['content', rubyString(`${settings.join('\n')}\n`)], ['notifies', ":run, 'execute[restart mysql for armada]', :immediately"]]),
      block('execute', 'restart mysql for armada', [['command', rubyString('service mariadb restart || service mysql restart')], ['action', ':nothing']]),
    );
  }
  for (const database of mysql?.databases ?? []) {
    blocks.push(
      block('execute', `mysql database ${database}`, [
        ['command', rubyString(`${MYSQL} -e ${shellWord(`CREATE DATABASE IF NOT EXISTS \`${database}\` CHARACTER SET utf8mb4`)}`)],
        ['not_if', rubyString(`${MYSQL} -e ${shellWord(`SHOW DATABASES LIKE '${database}'`)} | grep -qx ${shellWord(database)}`)],
      ]),
    );
  }
  for (const user of mysql?.users ?? []) {
    const account = `'${user.name}'@'${user.host}'`;
    blocks.push(
      block('execute', `mysql user ${user.name}@${user.host}`, [
        ['command', rubyString(`${escapedPassword}; ${MYSQL} -e "CREATE USER IF NOT EXISTS ${account} IDENTIFIED BY '$pw'"`)],
        ['environment', `({ 'ARMADA_PASSWORD' => ${secret(user.password.secret)} })`],
        ['sensitive', 'true'],
        ['not_if', rubyString(`${MYSQL} -e ${shellWord(`SELECT 1 FROM mysql.user WHERE User='${user.name}' AND Host='${user.host}'`)} | grep -q 1`)],
      ]),
    );
    for (const grant of user.grants) {
      const on = grant.database === '*' ? '*.*' : `\`${grant.database}\`.*`;
      blocks.push(
        block('execute', `mysql grant ${grant.privileges.join(', ')} on ${grant.database} to ${user.name}@${user.host}`, [
          ['command', rubyString(`${MYSQL} -e ${shellWord(`GRANT ${grant.privileges.join(', ')} ON ${on} TO ${account}`)}`)],
          ['not_if', rubyString(`${MYSQL} -e ${shellWord(`SHOW GRANTS FOR ${account}`)} | grep -qF ${shellWord(`ON ${on} TO`)}`)],
        ]),
      );
    }
  }
  if (mysql?.role === 'replica' && mysql.source && mysql.replicationUser) {
    const source = expression(mysql.source, values).ruby.slice(1, -1);
    blocks.push(
      block('execute', 'mysql replica of its primary', [
        ['command', rubyString(`${escapedPassword}; ${MYSQL} -e "CHANGE MASTER TO MASTER_HOST='${source}', MASTER_USER='${mysql.replicationUser.name}', MASTER_PASSWORD='$pw', MASTER_USE_GTID=slave_pos; START SLAVE"`)],
        ['environment', `({ 'ARMADA_PASSWORD' => ${secret(mysql.replicationUser.password.secret)} })`],
        ['sensitive', 'true'],
        ['not_if', rubyString(`${MYSQL} -e 'SHOW SLAVE STATUS' | grep -q .`)],
      ]),
    );
  }
  return `${blocks.join('\n\n')}\n`;
}

/** The cookbook: metadata and one recipe per role. */
export function renderCookbook(policies: ServerPolicies, values: ReadonlyMap<string, string>): RenderedArtifact[] {
  return [
    { path: 'cookbooks/armada/metadata.rb', content: "name 'armada'\nversion '0.1.0'\ndescription 'Rendered by Armada from server policies'\nchef_version '>= 16'\n" },
    ...Object.entries(policies.roles).map(([role, policy]) => ({ path: `cookbooks/armada/recipes/${role}.rb`, content: renderRecipe(role, policy, values, policies.os) })),
  ];
}
