/**
 * Takes an RDB snapshot from a live Redis the way a replica does: over a plain socket, AUTH (if
 * the endpoint has a password), `REPLCONF capa eof capa psync2`, `REPLCONF rdb-only 1` (Redis 7+;
 * older servers refuse it, which is fine), then `PSYNC ? -1`, answered by `+FULLRESYNC <replid>
 * <offset>` and the RDB, either as `$<length>\r\n<bytes>` (disk-based sync) or as
 * `$EOF:<40-byte mark>\r\n<bytes><mark>` (diskless). Newlines may come first, as keepalives while
 * the source prepares the snapshot. The socket is closed after the RDB: this is a copy, not
 * replication.
 */
import { connect, type Socket } from 'node:net';
import type { DataEndpoint } from '@armada/core';

/** The source refused to serve a snapshot (no permission, a managed Redis, not a Redis at all). */
export class PsyncRefusedError extends Error {
  override name = 'PsyncRefusedError';
}

const encode = (...args: Array<string | Buffer>): Buffer => {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const arg of args) {
    const bytes = typeof arg === 'string' ? Buffer.from(arg) : arg;
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
};

export interface SnapshotStart {
  replid: string;
  offset: number;
}

/** Where the RDB's bytes go: the parser, which knows where the RDB ends. */
export interface RdbSink {
  push(chunk: Buffer): void;
  readonly done: boolean;
  /** Bytes after the end of the RDB (the diskless EOF mark). */
  readonly trailing: Buffer;
}

/**
 * One snapshot. `start()` resolves on `+FULLRESYNC`, before the source has sent any data (so a
 * refusal is known before anything is written); `read(sink)` then feeds the RDB's bytes to the
 * sink and resolves at the end of the RDB. `pause()`/`resume()` apply backpressure: the source's
 * snapshot waits while we do.
 */
export class RdbSnapshot {
  private socket: Socket | undefined;
  private pending: Buffer = Buffer.alloc(0);
  private phase: 'handshake' | 'header' | 'body' | 'done' = 'handshake';
  private readonly replies: Array<{ name: string; optional: boolean; command: Buffer }> = [];
  private remaining = 0; // disk transfer: RDB bytes still to come
  private mark: Buffer | undefined; // diskless transfer: the EOF mark
  private sink: RdbSink | undefined;
  private onStart: ((start: SnapshotStart) => void) | undefined;
  private onEnd: (() => void) | undefined;
  private onError: ((error: Error) => void) | undefined;
  private failure: Error | undefined;
  private paused = false;
  /** How the RDB came: `disk` with its length, `diskless` with an EOF mark (known once it starts). */
  transfer: 'disk' | 'diskless' | undefined;

  constructor(
    private readonly endpoint: DataEndpoint,
    private readonly timeoutMs = 60_000,
  ) {}

  get where(): string {
    return `${this.endpoint.host}:${this.endpoint.port}`;
  }

  start(): Promise<SnapshotStart> {
    return new Promise<SnapshotStart>((resolve, reject) => {
      this.onStart = resolve;
      this.onError = reject;
      const socket = connect({ host: this.endpoint.host, port: this.endpoint.port, noDelay: true });
      this.socket = socket;
      socket.setTimeout(this.timeoutMs, () => {
        if (!this.paused) this.fail(new (this.phase === 'handshake' ? PsyncRefusedError : Error)(`The source Redis at ${this.where} sent nothing for ${this.timeoutMs / 1000} s while serving its snapshot.`));
      });
      socket.on('error', (error) => this.fail(this.phase === 'handshake' ? new PsyncRefusedError(`Cannot reach the source Redis at ${this.where}: ${error.message}`) : error));
      socket.on('close', () => this.fail(new (this.phase === 'handshake' ? PsyncRefusedError : Error)(`The source Redis at ${this.where} closed the connection before the end of its snapshot.`)));
      socket.on('data', (chunk: Buffer) => {
        try {
          this.data(chunk);
        } catch (error) {
          this.fail(error as Error);
        }
      });
      // One command at a time: Redis refuses PSYNC while replies to earlier commands are unsent.
      if (this.endpoint.password) {
        const args = this.endpoint.user ? ['AUTH', this.endpoint.user, this.endpoint.password] : ['AUTH', this.endpoint.password];
        this.replies.push({ name: 'AUTH', optional: false, command: encode(...args) });
      }
      this.replies.push({ name: 'REPLCONF', optional: false, command: encode('REPLCONF', 'capa', 'eof', 'capa', 'psync2') });
      // Redis 7: no replication stream after the RDB, and no backlog kept for us. Older servers refuse it.
      this.replies.push({ name: 'REPLCONF rdb-only', optional: true, command: encode('REPLCONF', 'rdb-only', '1') });
      this.replies.push({ name: 'PSYNC', optional: false, command: encode('PSYNC', '?', '-1') });
      socket.once('connect', () => socket.write((this.replies[0] as { command: Buffer }).command));
    });
  }

  /** Feeds the RDB to `sink`; resolves once the sink has seen its end (and, diskless, the EOF mark). */
  read(sink: RdbSink): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (this.failure) return reject(this.failure);
      this.sink = sink;
      this.onEnd = resolve;
      this.onError = reject;
      const buffered = this.pending;
      this.pending = Buffer.alloc(0);
      // Resumed first: a pause for backpressure while the buffered bytes are parsed must hold.
      this.resume();
      try {
        if (buffered.length > 0) this.data(buffered);
      } catch (error) {
        this.fail(error as Error);
      }
    });
  }

  pause(): void {
    if (this.paused || !this.socket) return;
    this.paused = true;
    this.socket.pause();
  }

  resume(): void {
    if (!this.paused || !this.socket) return;
    this.paused = false;
    this.socket.resume();
  }

  close(): void {
    this.socket?.destroy();
    this.socket = undefined;
  }

  fail(error: Error): void {
    if (this.failure || this.phase === 'done') return;
    this.failure = error;
    this.close();
    this.onError?.(error);
  }

  private data(chunk: Buffer): void {
    if (this.failure || this.phase === 'done') return;
    if (this.phase !== 'handshake' && !this.sink) {
      this.pending = this.pending.length > 0 ? Buffer.concat([this.pending, chunk]) : chunk;
      return;
    }
    if (this.phase === 'body') {
      this.body(chunk);
      return;
    }
    let buffer = this.pending.length > 0 ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = Buffer.alloc(0);
    for (;;) {
      // Keepalive newlines may come before any reply and before the RDB.
      let start = 0;
      while (start < buffer.length && buffer[start] === 10) start++;
      const end = buffer.indexOf('\r\n', start);
      if (end < 0) {
        this.pending = buffer.subarray(start);
        return;
      }
      const line = buffer.toString('latin1', start, end);
      buffer = buffer.subarray(end + 2);
      if (this.phase === 'handshake') {
        const expected = this.replies.shift();
        if (line.startsWith('-') && !expected?.optional) {
          const message = line.slice(1, 200);
          const auth = /NOAUTH|WRONGPASS|invalid password|invalid username/i.test(message);
          this.fail(new PsyncRefusedError(`The source Redis at ${this.where} refused ${expected?.name ?? 'the snapshot'}: ${auth ? 'authentication failed' : message}`));
          return;
        }
        if (expected?.name !== 'PSYNC') {
          const next = this.replies[0];
          if (next) this.socket?.write(next.command);
          continue;
        }
        const match = /^\+FULLRESYNC (\S+) (\d+)/.exec(line);
        if (!match) {
          this.fail(new PsyncRefusedError(`The source Redis at ${this.where} answered PSYNC with ${JSON.stringify(line.slice(0, 80))}, not a full resync.`));
          return;
        }
        this.phase = 'header';
        this.onStart?.({ replid: match[1] as string, offset: Number(match[2]) });
        if (!this.sink) {
          // Nothing reads yet: keep what came, and hold the rest back at the source until read().
          this.pending = buffer;
          this.pause();
          return;
        }
        continue;
      }
      // The RDB header: `$EOF:<mark>` (diskless) or `$<length>` (from disk).
      if (line.startsWith('$EOF:')) this.mark = Buffer.from(line.slice(5), 'latin1');
      else if (/^\$\d+$/.test(line)) this.remaining = Number(line.slice(1));
      else {
        this.fail(new Error(`The source Redis at ${this.where} sent ${JSON.stringify(line.slice(0, 80))} where its snapshot should start.`));
        return;
      }
      this.transfer = this.mark ? 'diskless' : 'disk';
      this.phase = 'body';
      if (buffer.length > 0) this.body(buffer);
      return;
    }
  }

  private body(chunk: Buffer): void {
    const sink = this.sink as RdbSink;
    if (this.mark) {
      sink.push(chunk);
      if (!sink.done || sink.trailing.length < this.mark.length) return;
      if (!sink.trailing.subarray(0, this.mark.length).equals(this.mark)) throw new Error(`The snapshot from ${this.where} did not end with its EOF mark.`);
      this.end();
      return;
    }
    const take = Math.min(this.remaining, chunk.length);
    this.remaining -= take;
    sink.push(take === chunk.length ? chunk : chunk.subarray(0, take));
    if (sink.done && this.remaining > 0) throw new Error(`The snapshot from ${this.where} has ${this.remaining} bytes after the end of its RDB.`);
    if (this.remaining === 0) {
      if (!sink.done) throw new Error(`The snapshot from ${this.where} ended before the end of its RDB.`);
      this.end();
    }
  }

  private end(): void {
    this.phase = 'done';
    this.close();
    this.onEnd?.();
  }
}
