/**
 * Availability Zones and the instance types each one offers, as EC2 has them, for the types the
 * providers use and a few more. Trimmed from moto (github.com/getmoto/moto, snapshot 0af643a):
 * the offerings from moto/ec2/resources/instance_type_offerings/availability-zone/<region>.json,
 * the zone ids from moto/ec2/models/availability_zones_and_regions.py (on AWS the name-to-id
 * mapping differs per account). Types are offered per zone: us-east-1e lacks the t3 and m5
 * families, and m3.medium is in us-east-1a, b, c and e only.
 */

export interface Zone {
  name: string;
  id: string;
}

/** One region's zones, and the names of the zones that offer each instance type it knows. */
export interface ZoneCatalogue {
  zones: readonly Zone[];
  offerings: ReadonlyMap<string, readonly string[]>;
}

/** Every instance type the emulator knows; RunInstances refuses any other as an invalid value. */
export const KNOWN_INSTANCE_TYPES: readonly string[] = [
  'm1.small', 't2.micro', 't3.nano', 't3.micro', 't3.small', 't3.medium', 't3.large', 't3.xlarge', 't4g.micro',
  'm3.medium', 'm3.large', 'm5.large', 'm5.xlarge', 'm5.2xlarge', 'm5.4xlarge', 'm6i.large', 'c5.large',
];

/**
 * Per region: each zone's letter and id, then the types offered in only some of its zones, by
 * the letters of those zones. Every other known type is offered in every zone.
 */
const CATALOGUE: Record<string, { zones: string; offeredIn: Record<string, string> }> = {
  'us-east-1': {
    zones: 'a:use1-az6 b:use1-az1 c:use1-az2 d:use1-az4 e:use1-az3 f:use1-az5',
    offeredIn: {
      abcd: 'm1.small',
      abce: 'm3.medium m3.large',
      abcdf: 't3.nano t3.micro t3.small t3.medium t3.large t3.xlarge t4g.micro m5.large m5.xlarge m5.2xlarge m5.4xlarge m6i.large c5.large',
    },
  },
  'us-west-2': { zones: 'a:usw2-az2 b:usw2-az1 c:usw2-az3 d:usw2-az4', offeredIn: { abc: 'm1.small t2.micro m3.medium m3.large' } },
  'eu-west-1': { zones: 'a:euw1-az3 b:euw1-az1 c:euw1-az2', offeredIn: {} },
};

/**
 * The zones of `region` and what each offers; `overrides` (instance type -> zone names, `[]` for
 * none) replace the table's entries. A region missing from the table gets zones a, b and c,
 * each offering every known type.
 */
export function zoneCatalogue(region: string, overrides: Readonly<Record<string, readonly string[]>> = {}): ZoneCatalogue {
  const entry = CATALOGUE[region] ?? { zones: 'a:az1 b:az2 c:az3', offeredIn: {} };
  const zones = entry.zones.split(' ').map((pair) => {
    const [letter, id] = pair.split(':') as [string, string];
    return { name: `${region}${letter}`, id: CATALOGUE[region] ? id : `${region}-${id}` };
  });
  const lettersOf = new Map(Object.entries(entry.offeredIn).flatMap(([letters, types]) => types.split(' ').map((type) => [type, letters] as const)));
  const everywhere = zones.map((zone) => zone.name.slice(-1)).join('');
  const offerings = new Map<string, readonly string[]>(
    KNOWN_INSTANCE_TYPES.map((type) => [type, [...(lettersOf.get(type) ?? everywhere)].map((letter) => `${region}${letter}`)]),
  );
  for (const [type, names] of Object.entries(overrides)) offerings.set(type, names);
  return { zones, offerings };
}
