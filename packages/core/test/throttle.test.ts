import { describe, expect, it } from 'vitest';
import { Throttle, throttleFor, ValidationError } from '../src/index.js';

describe('Throttle', () => {
  it('asks to wait as long as the average rate needs, counted from the first byte', () => {
    const throttle = new Throttle(1_000);
    expect(throttle.delayFor(500)).toBeGreaterThan(400);
    expect(throttle.delayFor(500)).toBeGreaterThan(900);
  });

  it('waits for real, and is absent when no rate is asked for', async () => {
    const started = performance.now();
    await new Throttle(10_000).take(2_000);
    expect(performance.now() - started).toBeGreaterThanOrEqual(190);
    expect(throttleFor({})).toBeUndefined();
  });

  it('refuses a rate it cannot keep', () => {
    expect(() => new Throttle(0)).toThrow(ValidationError);
    expect(() => throttleFor({ maxBytesPerSecond: Number.NaN })).toThrow('cannot be kept');
  });
});
