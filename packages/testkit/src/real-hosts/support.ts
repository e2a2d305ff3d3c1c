/**
 * Whether this machine can run real hosts, and if not, exactly what is missing: the demo falls
 * back to the loopback world and says why; CI fails on any of these instead of skipping.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';

export interface RealHostSupport {
  ok: boolean;
  /** One line per missing capability, naming the package or setting that brings it. */
  missing: string[];
}

function commandExists(command: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export function realHostSupport(): RealHostSupport {
  const missing: string[] = [];
  if (process.platform !== 'linux') missing.push(`Linux (this is ${process.platform})`);
  if (process.getuid?.() !== 0) missing.push('root (network namespaces, mounts and nftables need it)');
  for (const [command, pkg] of [
    ['ip', 'iproute2'],
    ['nft', 'nftables'],
    ['unshare', 'util-linux'],
    ['nsenter', 'util-linux'],
    ['debootstrap', 'debootstrap'],
    ['bash', 'bash'],
    ['timeout', 'coreutils'],
  ] as const) {
    if (!commandExists(command)) missing.push(`${command} (Debian package ${pkg})`);
  }
  if (existsSync('/proc/filesystems') && !readFileSync('/proc/filesystems', 'utf8').includes('overlay')) missing.push('the overlay filesystem (kernel module overlay)');
  if (missing.length === 0) {
    // Capabilities can be missing even as root (a container without CAP_SYS_ADMIN): try one namespace.
    try {
      execFileSync('unshare', ['--net', '--mount', '--pid', '--fork', 'true'], { stdio: 'ignore' });
    } catch {
      missing.push('permission to create network, mount and pid namespaces (unshare --net --mount --pid failed)');
    }
  }
  return { ok: missing.length === 0, missing };
}
