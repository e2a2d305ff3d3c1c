/**
 * RESP by hand, shared by the raw-socket writers and readers (restore-writer.ts, scan-copy.ts,
 * verify-wire.ts): no object, string or promise per command on their hot paths, and one way to
 * open such a socket.
 */
import { connect, type Socket } from 'node:net';
import { ArmadaError, type DataEndpoint } from '@armada/core';

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

/** `$<length>\r\n<bytes>\r\n` written at `offset` (room must be there): the new offset. */
export function writeBulk(target: Buffer, offset: number, source: Buffer, start: number, end: number): number {
  target[offset++] = 36; // $
  let at = writeDecimal(target, offset, end - start);
  target[at++] = 13;
  target[at++] = 10;
  at = copyInto(target, at, source, start, end);
  target[at++] = 13;
  target[at++] = 10;
  return at;
}

/** A non-negative integer as a bulk argument, `$<digits>\r\n<value>\r\n`, written at `offset`: the new offset. */
export function writeBulkInteger(target: Buffer, offset: number, value: number): number {
  target[offset++] = 36; // $
  let at = writeDecimal(target, offset, decimalDigits(value));
  target[at++] = 13;
  target[at++] = 10;
  at = writeDecimal(target, at, value);
  target[at++] = 13;
  target[at++] = 10;
  return at;
}

/** One whole command, for the few sent outside a hot path (AUTH, SELECT). */
export function encodeCommand(args: ReadonlyArray<string | Buffer>): Buffer {
  const parts = args.map((arg) => (typeof arg === 'string' ? Buffer.from(arg) : arg));
  return Buffer.concat([Buffer.from(`*${parts.length}\r\n`), ...parts.flatMap((part) => [Buffer.from(`$${part.length}\r\n`), part, Buffer.from('\r\n')])]);
}

/**
 * A plain socket to a Redis server, connected and, when the endpoint has a password,
 * authenticated (AUTH answered +OK before anything else is sent): what the raw-socket writers and
 * readers start from. Errors name the role and the address, never the password.
 */
export async function connectRaw(endpoint: DataEndpoint, role: 'source' | 'target'): Promise<Socket> {
  const where = `${endpoint.host}:${endpoint.port}`;
  const socket = connect({ host: endpoint.host, port: endpoint.port, noDelay: true });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', (error) => reject(new ArmadaError('Unknown', `Cannot reach the ${role} Redis at ${where}: ${error.message}`, { cause: error })));
  });
  if (!endpoint.password) return socket;
  socket.write(encodeCommand(endpoint.user ? ['AUTH', endpoint.user, endpoint.password] : ['AUTH', endpoint.password]));
  const reply = await new Promise<string>((resolve, reject) => {
    let text = '';
    const onData = (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (!text.includes('\n')) return;
      socket.off('data', onData);
      resolve(text);
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.once('close', () => reject(new Error('closed')));
  }).catch((error: Error) => `-${error.message}`);
  if (!reply.startsWith('+')) {
    socket.destroy();
    throw new ArmadaError('Unknown', `Cannot reach the ${role} Redis at ${where}: authentication failed.`);
  }
  return socket;
}
