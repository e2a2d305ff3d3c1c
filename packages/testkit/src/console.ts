/**
 * A cloud instance's console output after its first boot, as Debian's cloud-init writes it on
 * EC2 and OpenStack: the SSH host keys' fingerprints (`ec2: ` lines), then the keys between
 * `-----BEGIN SSH HOST KEY KEYS-----` and `-----END SSH HOST KEY KEYS-----`. The emulators answer
 * GetConsoleOutput (EC2) and os-getConsoleOutput (Nova) with it.
 */
import { createHash } from 'node:crypto';
import { fingerprintOf } from '@armada/core';

/** An ed25519 public key made from `seed`: an instance's own stand-in key (no one can log in with it). */
export function standInHostKey(seed: string): string {
  const type = Buffer.from('ssh-ed25519');
  const point = createHash('sha256').update(seed).digest();
  return `ssh-ed25519 ${Buffer.concat([Buffer.from([0, 0, 0, type.length]), type, Buffer.from([0, 0, 0, 32]), point]).toString('base64')}`;
}

export function bootConsole(hostKeys: readonly string[], hostname: string): string {
  const keys = hostKeys.map((key) => key.split(/\s+/).slice(0, 2).join(' '));
  const fingerprint = (key: string) => fingerprintOf(Buffer.from(key.split(' ')[1] ?? '', 'base64'));
  const kind = (key: string) => (key.startsWith('ssh-ed25519') ? 'ED25519' : key.startsWith('ssh-rsa') ? 'RSA' : 'ECDSA');
  return [
    '[    0.000000] Linux version 6.1.0-13-cloud-amd64 (debian-kernel@lists.debian.org)',
    'ec2: ',
    'ec2: #############################################################',
    'ec2: -----BEGIN SSH HOST KEY FINGERPRINTS-----',
    ...keys.map((key) => `ec2: 256 ${fingerprint(key)} root@${hostname} (${kind(key)})`),
    'ec2: -----END SSH HOST KEY FINGERPRINTS-----',
    'ec2: #############################################################',
    '-----BEGIN SSH HOST KEY KEYS-----',
    ...keys.map((key) => `${key} root@${hostname}`),
    '-----END SSH HOST KEY KEYS-----',
    'Cloud-init v. 22.4.2 finished. Datasource DataSourceEc2Local.',
    '',
  ].join('\n');
}
