/**
 * The deliberately bad spec: every mistake is reported in one call, each with its path.
 */
import { checkEnvironment, formatViolations, parseSpecText } from '@armada/core';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const badPath = fileURLToPath(new URL('../environments/bad.yaml', import.meta.url));

describe('a deliberately bad spec', () => {
  const check = checkEnvironment(parseSpecText(readFileSync(badPath, 'utf8'), badPath));

  it('yields every violation, each with its rule and path, in one call', () => {
    expect(check.ok).toBe(false);
    const found = check.violations.map((violation) => [violation.rule, violation.path, violation.severity]);
    expect(found).toEqual(
      expect.arrayContaining([
        ['no-any-any', 'firewalls[0].ingress[0]', 'error'],
        ['no-database-open-to-internet', 'firewalls[1].ingress[0]', 'error'],
        ['subnets-fit-network', 'network.subnets[1].cidr', 'error'],
        ['required-tags', 'instances[0].tags', 'error'],
        ['references-resolve', 'instances[0].firewalls[1]', 'error'],
        ['valid-cidrs', 'network.subnets[2].cidr', 'error'],
      ]),
    );
    expect(found).toHaveLength(6);
  });

  it('says what is wrong and how to fix it', () => {
    const text = formatViolations(check.violations);
    expect(text).toContain('firewall "Data Internal" opens MySQL 3306 to the internet (0.0.0.0/0)');
    expect(text).toContain('subnet "private" (10.0.1.128/25) overlaps subnet "public" (10.0.1.0/24)');
    expect(text).toContain('instance "web" uses firewall "Cache Internal", which is not defined');
    expect(text).toContain('"10.0.300.0/24" is not a valid CIDR block');
    expect(text).toContain('instance "web" lacks the tag Version');
    for (const violation of check.violations) expect(violation.fix, violation.rule).toBeTruthy();
  });
});
