/**
 * Writing RESP by hand into large buffers, shared by the raw-socket writers (restore-writer.ts,
 * scan-copy.ts): no object, string or promise per command on their hot paths.
 */

/** Copies bytes; short runs by hand, which beats a native call for the few bytes of a key. */
export function copyInto(target: Buffer, offset: number, source: Buffer, start: number, end: number): number {
  const length = end - start;
  if (length < 48) {
    for (let index = 0; index < length; index++) target[offset + index] = source[start + index] as number;
  } else source.copy(target, offset, start, end);
  return offset + length;
}

export function decimalDigits(value: number): number {
  let digits = 1;
  for (let rest = value; rest >= 10; rest = Math.floor(rest / 10)) digits++;
  return digits;
}

/** The decimal digits of a non-negative integer, written at `offset`: the new offset. */
export function writeDecimal(target: Buffer, offset: number, value: number): number {
  if (value < 10) {
    target[offset] = 48 + value;
    return offset + 1;
  }
  const digits = decimalDigits(value);
  let rest = value;
  for (let index = offset + digits - 1; index >= offset; index--) {
    target[index] = 48 + (rest % 10);
    rest = Math.floor(rest / 10);
  }
  return offset + digits;
}
