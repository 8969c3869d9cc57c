// Whether a store can still write, for `/ready`. A read alone (the `SELECT 1` of a ping) went on answering while every
// write failed (a full disk, a read-only filesystem or database), so `/ready` said 200 to a server that could only
// refuse. Once a write has failed for such a reason, each ping tries a write of its own (64 KiB), and the store counts as
// ready again when one commits. No write is made while nothing failed: probes by a load balancer cost nothing then.
import { randomBytes } from 'node:crypto';

/** The setting the stores' probe writes update. */
export const WRITE_PROBE_SETTING = 'write-probe';

/**
 * What a probe writes: 64 KiB that do not compress. A probe of a few bytes still fitted in the room a full disk left in
 * the SQLite WAL after requests of a few pages no longer did, and /ready said 200 to a few failures more; this one
 * needs as much room as a sizeable request. Written only while writes are failing.
 */
export const writeProbeValue = (): string => `${Date.now()} ${randomBytes(48 * 1024).toString('base64')}`;

export class WriteHealth {
  private failing = false;

  constructor(
    /** Whether an error says the storage refuses writes (rather than the request being wrong, or a conflict). */
    private readonly refusesWrites: (error: unknown) => boolean,
    /** A small write that commits (it may be repeated). */
    private readonly probe: () => Promise<unknown>,
  ) {}

  /** Notes a failed write. */
  failed(error: unknown): void {
    if (this.refusesWrites(error)) this.failing = true;
  }

  /** True unless a write failed for the storage's sake and a probe write still fails. */
  async canWrite(): Promise<boolean> {
    if (!this.failing) return true;
    try {
      await this.probe();
      this.failing = false;
      return true;
    } catch {
      return false;
    }
  }
}

/** The result codes of SQLite (better-sqlite3's `code`, extended codes included) that mean the file cannot be written. */
export function sqliteRefusesWrites(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && /^SQLITE_(FULL|IOERR|READONLY|CANTOPEN|CORRUPT|NOTADB|PERM)/.test(code);
}

/** PostgreSQL's SQLSTATEs for a full disk, a read-only transaction or database (a standby), and I/O errors. */
export function postgresRefusesWrites(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return code === '53100' || code === '25006' || code === '58030';
}
