/**
 * Real hosts for the emulators: every instance a Linux host on this machine (network, pid and
 * mount namespaces, a copy-on-write Debian 12 root, sshd), every network a router namespace,
 * every firewall nftables rules. `@armada/testkit/real-hosts`.
 */
export * from './topology.js';
export * from './image.js';
export * from './lab.js';
export * from './support.js';
export { CommandFailedError } from './shell.js';
