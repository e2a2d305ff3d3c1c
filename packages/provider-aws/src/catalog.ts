/**
 * Portable sizes and images to EC2 instance types and AMIs. The tables are explicit and
 * overridable: clouds change their catalogues, and users know their own accounts best.
 */
export interface InstanceTypeEntry {
  instanceType: string;
  cpus: number;
  memoryGiB: number;
}

/** Ordered by memory, then CPUs: the first that fits is the smallest that fits. */
export const DEFAULT_INSTANCE_TYPES: readonly InstanceTypeEntry[] = [
  { instanceType: 't3.nano', cpus: 2, memoryGiB: 0.5 },
  { instanceType: 't3.micro', cpus: 2, memoryGiB: 1 },
  { instanceType: 't3.small', cpus: 2, memoryGiB: 2 },
  { instanceType: 'm3.medium', cpus: 1, memoryGiB: 3.75 },
  { instanceType: 't3.medium', cpus: 2, memoryGiB: 4 },
  { instanceType: 'm3.large', cpus: 2, memoryGiB: 7.5 },
  { instanceType: 'm5.large', cpus: 2, memoryGiB: 8 },
  { instanceType: 'm5.xlarge', cpus: 4, memoryGiB: 16 },
  { instanceType: 'm5.2xlarge', cpus: 8, memoryGiB: 32 },
  { instanceType: 'm5.4xlarge', cpus: 16, memoryGiB: 64 },
];

export interface ImageLookup {
  /** AMI owner account: Debian 136693071363, Canonical 099720109477. */
  owner: string;
  /** DescribeImages name filter; the newest match (by creation date, then name) wins. */
  namePattern: string;
}

export const DEFAULT_IMAGES: Readonly<Record<string, ImageLookup>> = {
  'debian-11': { owner: '136693071363', namePattern: 'debian-11-amd64-*' },
  'debian-12': { owner: '136693071363', namePattern: 'debian-12-amd64-*' },
  'ubuntu-22.04': { owner: '099720109477', namePattern: 'ubuntu/images/hvm-ssd*/ubuntu-jammy-22.04-amd64-server-*' },
  'ubuntu-24.04': { owner: '099720109477', namePattern: 'ubuntu/images/hvm-ssd*/ubuntu-noble-24.04-amd64-server-*' },
};
