/**
 * DigitalOcean has plain string tags (`^[a-zA-Z0-9_\-:]+$`) and firewall names limited to letters,
 * digits, `.` and `-`. Armada's tags are key/value and its names may hold spaces or dots, so they
 * are encoded reversibly:
 *
 * - in tags, every character outside `[A-Za-z0-9-]` becomes `_` plus two hex digits per UTF-8
 *   byte (`.` is `_2e`, `_` is `_5f`, a space is `_20`), and `:` separates the parts:
 *   `armada:env:<environment>`, `armada:res:<address>`, `armada:fw:<environment>:<firewall>`,
 *   `armada:subnet:<environment>:<subnet>`, `armada:role:<role>`, `armada:key:<key pair>`,
 *   `armada:userdata:<sha256>`, and user tags as `tag:<key>:<value>` (Version 1.2.3 is
 *   `tag:Version:1_2e2_2e3`);
 * - in firewall names, the same with `-` as the escape (`-2d` for `-` itself) and `.` between
 *   parts: `armada.<environment>.<firewall>`.
 */
function encodeWith(text: string, escapeCharacter: string, keep: RegExp): string {
  let encoded = '';
  for (const character of text) {
    if (keep.test(character)) encoded += character;
    else for (const byte of Buffer.from(character, 'utf8')) encoded += `${escapeCharacter}${byte.toString(16).padStart(2, '0')}`;
  }
  return encoded;
}

function decodeWith(text: string, escapeCharacter: string): string {
  const bytes: number[] = [];
  for (let index = 0; index < text.length; index++) {
    if (text[index] === escapeCharacter && /^[0-9a-f]{2}$/.test(text.slice(index + 1, index + 3))) {
      bytes.push(Number.parseInt(text.slice(index + 1, index + 3), 16));
      index += 2;
    } else bytes.push(...Buffer.from(text[index] as string, 'utf8'));
  }
  return Buffer.from(bytes).toString('utf8');
}

export const encodeTagPart = (text: string) => encodeWith(text, '_', /[A-Za-z0-9-]/);
export const decodeTagPart = (text: string) => decodeWith(text, '_');
export const encodeNamePart = (text: string) => encodeWith(text, '-', /[A-Za-z0-9]/);
export const decodeNamePart = (text: string) => decodeWith(text, '-');

export function tag(...parts: string[]): string {
  const [kind, ...values] = parts;
  return [kind, ...values.map(encodeTagPart)].join(':');
}

/** `armada:fw:armada:Web_20Public` -> ['armada:fw', 'armada', 'Web Public'] style access. */
export function parseTag(text: string): { kind: string; values: string[] } {
  const [first, second, ...rest] = text.split(':');
  if (first === 'armada') return { kind: `armada:${second}`, values: rest.map(decodeTagPart) };
  return { kind: first ?? '', values: [second, ...rest].filter((value): value is string => value !== undefined).map(decodeTagPart) };
}

export const firewallCloudName = (environment: string, name: string) => `armada.${encodeNamePart(environment)}.${encodeNamePart(name)}`;

export function parseFirewallCloudName(text: string): { environment: string; name: string } | undefined {
  const parts = text.split('.');
  if (parts.length !== 3 || parts[0] !== 'armada') return undefined;
  return { environment: decodeNamePart(parts[1] as string), name: decodeNamePart(parts[2] as string) };
}

/** Droplet names are host names: letters, digits, `-` and `.`. */
export const hostName = (name: string) => name.toLowerCase().replace(/[^a-z0-9.-]+/g, '-').replace(/^-+|-+$/g, '') || 'droplet';
