/**
 * The README is the plugin-author guide, so it must match the code: its conformance snippet is
 * test/conformance.test.ts, and its capabilities block is what the provider declares.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createOpenStackProvider } from '../src/index.js';

const read = (path: string) => readFileSync(new URL(path, import.meta.url), 'utf8');
const readme = read('../README.md');
const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((match) => match[1] ?? '');

describe('README', () => {
  it('shows the conformance wiring exactly as test/conformance.test.ts has it', () => {
    const code = read('./conformance.test.ts').replace(/^\/\*\*[\s\S]*?\*\/\n/, '');
    expect(blocks).toContain(code);
  });

  it('lists the capabilities the provider declares', () => {
    const block = blocks.find((entry) => entry.startsWith('capabilities: {')) ?? '';
    const declared = Function(`return ({ ${block.replace(/\/\/.*$/gm, '')} })`)() as { capabilities: unknown };
    expect(declared.capabilities).toEqual(createOpenStackProvider({ region: 'region-b.geo-1' }).capabilities);
  });
});
