/**
 * SQLite as a shared key/value table: `bun:sqlite` under Bun, `node:sqlite` under Deno, each the
 * runtime's built-in binding, so no npm package is involved.
 *
 * Configuration, the usual one for SQLite as a multi-process cache:
 * - the database file lives on /dev/shm (a fresh scratch directory unless `path` is given);
 * - `journal_mode=WAL` (readers never block the writer), `synchronous=NORMAL` (no fsync per
 *   commit in WAL mode; nothing to flush on tmpfs anyway), `busy_timeout=5000` so that writers
 *   of several processes wait for each other instead of failing with SQLITE_BUSY;
 * - one table `kv(key TEXT PRIMARY KEY, value BLOB) WITHOUT ROWID`; strings are stored as TEXT
 *   (UTF-8), bytes as BLOB;
 * - prepared statements, prepared once; each write is its own autocommit transaction.
 *
 * @module
 */
import { runtime } from "../../ffi/runtime.ts";
import type { Peer, PeerFactoryOptions } from "./types.ts";
import {
  allocatedBytes,
  errorMessage,
  makeScratchDir,
  removeScratchDir,
  warnUnavailable,
} from "./types.ts";

/** Options of {@linkcode openSqlitePeer}. */
export interface SqlitePeerOptions extends PeerFactoryOptions {
  /**
   * Database file to attach to (another process's peer `location`); it is left in place on
   * close. Default: `kv.db` in a fresh scratch directory on /dev/shm, removed on close.
   */
  path?: string;
}

/** The part of a prepared statement used here; bun:sqlite and node:sqlite both have it. */
interface Statement {
  get(...params: Array<string | number | Uint8Array>): unknown;
  run(...params: Array<string | number | Uint8Array>): { changes: number | bigint };
}

/** The part of a database connection used here; bun:sqlite and node:sqlite both have it. */
interface Database {
  exec(sql: string): unknown;
  prepare(sql: string): Statement;
  close(): void;
}

/** The bun:sqlite module, as far as used here (Bun's types are not installed). */
interface BunSqliteModule {
  Database: new (path: string, options?: { create?: boolean; strict?: boolean }) => Database;
}

/** Opens a connection with the runtime's built-in binding; returns it with its label. */
async function connect(path: string): Promise<{ db: Database; binding: string }> {
  if (runtime === "bun") {
    const specifier = "bun:sqlite"; // a variable, so that Deno never resolves it
    const { Database } = (await import(specifier)) as BunSqliteModule;
    return { db: new Database(path, { create: true, strict: true }), binding: "bun:sqlite" };
  }
  const { DatabaseSync } = await import("node:sqlite");
  return { db: new DatabaseSync(path) as unknown as Database, binding: "node:sqlite" };
}

/**
 * Opens a SQLite peer with the runtime's built-in binding.
 *
 * @param options Where to open it and what to do when SQLite is unavailable.
 * @returns The peer, or undefined when this runtime has no SQLite binding (the reason goes to
 * `options.onUnavailable`).
 *
 * @example Set and get
 * ```ts
 * import { openSqlitePeer } from "./sqlite.ts";
 *
 * const peer = await openSqlitePeer();
 * if (peer) {
 *   peer.setString("greeting", "hello");
 *   console.log(peer.getString("greeting")); // hello
 *   peer.close();
 * }
 * ```
 */
export async function openSqlitePeer(options: SqlitePeerOptions = {}): Promise<Peer | undefined> {
  const onUnavailable = options.onUnavailable ?? warnUnavailable;
  const owned = options.path === undefined;
  const dir = owned ? makeScratchDir("sqlite") : undefined;
  const path = options.path ?? `${dir}/kv.db`;
  let db: Database;
  let binding: string;
  try {
    ({ db, binding } = await connect(path));
  } catch (error) {
    if (dir !== undefined) removeScratchDir(dir);
    const binding = runtime === "bun" ? "bun:sqlite" : "node:sqlite";
    onUnavailable(`SQLite (${binding})`, `cannot open ${binding} (${errorMessage(error)})`);
    return undefined;
  }
  const name = `SQLite (${binding})`;
  let version = "?";
  let select: Statement, upsert: Statement, remove: Statement, increment: Statement;
  let insertNew: Statement, selectTtl: Statement, upsertTtl: Statement, incrementTtl: Statement;
  let removeTtl: Statement;
  try {
    db.exec("PRAGMA journal_mode=WAL");
    db.exec("PRAGMA synchronous=NORMAL");
    db.exec("PRAGMA busy_timeout=5000");
    db.exec("CREATE TABLE IF NOT EXISTS kv(key TEXT PRIMARY KEY, value BLOB) WITHOUT ROWID");
    // Entries that expire: their own table, with the time (ms) a read compares.
    db.exec(
      "CREATE TABLE IF NOT EXISTS kv_ttl(key TEXT PRIMARY KEY, value BLOB, expires INTEGER NOT NULL) WITHOUT ROWID",
    );
    version = (db.prepare("SELECT sqlite_version() AS v").get() as { v: string }).v;
    select = db.prepare("SELECT value FROM kv WHERE key = ?");
    upsert = db.prepare(
      "INSERT INTO kv(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    );
    remove = db.prepare("DELETE FROM kv WHERE key = ?");
    removeTtl = db.prepare("DELETE FROM kv_ttl WHERE key = ?");
    insertNew = db.prepare("INSERT OR IGNORE INTO kv(key, value) VALUES (?, ?)");
    selectTtl = db.prepare("SELECT value FROM kv_ttl WHERE key = ? AND expires > ?");
    upsertTtl = db.prepare(
      "INSERT INTO kv_ttl(key, value, expires) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value, expires = excluded.expires",
    );
    // A live counter counts on, an expired one starts again at 1 with a new window.
    incrementTtl = db.prepare(
      "INSERT INTO kv_ttl(key, value, expires) VALUES (?1, 1, ?2 + ?3) ON CONFLICT(key) DO UPDATE SET " +
        "value = CASE WHEN expires > ?2 THEN value + 1 ELSE 1 END, " +
        "expires = CASE WHEN expires > ?2 THEN expires ELSE ?2 + ?3 END RETURNING value",
    );
    increment = db.prepare(
      "INSERT INTO kv(key, value) VALUES (?, 1) ON CONFLICT(key) DO UPDATE SET value = value + 1 RETURNING value",
    );
  } catch (error) {
    db.close();
    if (dir !== undefined) removeScratchDir(dir);
    onUnavailable(name, `cannot set up the database (${errorMessage(error)})`);
    return undefined;
  }
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();
  /** The stored value, or undefined; node:sqlite says undefined for no row, bun:sqlite null. */
  const read = (key: string): string | Uint8Array | undefined =>
    (select.get(key) as { value: string | Uint8Array } | undefined | null)?.value;
  let closed = false;
  return {
    name,
    description:
      `SQLite ${version} via ${binding}, ${path}, WAL, synchronous=NORMAL, prepared statements`,
    sharesAcrossProcesses: true,
    location: path,
    getBytes(key) {
      const value = read(key);
      return typeof value === "string" ? encoder.encode(value) : value;
    },
    getString(key) {
      const value = read(key);
      return value === undefined || typeof value === "string" ? value : decoder.decode(value);
    },
    setBytes(key, value) {
      upsert.run(key, value);
    },
    setString(key, value) {
      upsert.run(key, value);
    },
    delete(key) {
      return Number(remove.run(key).changes) > 0;
    },
    increment(key) {
      return Number((increment.get(key) as { value: number }).value);
    },
    add(key, value) {
      return Number(insertNew.run(key, value).changes) > 0;
    },
    setStringTtl(key, value, ttl) {
      upsertTtl.run(key, value, Date.now() + ttl);
    },
    getStringTtl(key) {
      const row = selectTtl.get(key, Date.now()) as
        | { value: string | Uint8Array }
        | undefined
        | null;
      const value = row?.value;
      return value === undefined || typeof value === "string" ? value : decoder.decode(value);
    },
    deleteTtl(key) {
      return Number(removeTtl.run(key).changes) > 0;
    },
    incrementTtl(key, ttl) {
      return Number((incrementTtl.get(key, Date.now(), ttl) as { value: number }).value);
    },
    close() {
      if (closed) return;
      closed = true;
      db.close();
      if (dir !== undefined) removeScratchDir(dir);
    },
    memoryBytes() {
      return closed ? undefined : allocatedBytes(path, `${path}-wal`, `${path}-shm`);
    },
  };
}
