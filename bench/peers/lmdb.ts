/**
 * lmdb-js (npm `lmdb`): a memory-mapped B+tree that several processes open at once. The
 * closest peer to memalloc in kind: synchronous reads straight from a shared mapping.
 *
 * Configuration, chosen to be fair to lmdb-js:
 * - the environment lives on /dev/shm (a fresh scratch directory unless `path` is given), so it
 *   runs from memory like memalloc;
 * - `encoding: "string"`: strings are written as UTF-8 and read back by lmdb-js's native string
 *   path (`get`), bytes are written raw and read with `getBinary` (a copy the caller owns, as
 *   memalloc returns); no msgpack, no compression, no in-process cache (`cache: false`, the
 *   default), so every read goes to the shared map;
 * - writes with `putSync`/`removeSync`: one committed write transaction per call, visible to
 *   other processes on return;
 * - `noSync: true`: no fsync per commit, the analogue of SQLite's `synchronous=NORMAL` in WAL
 *   mode (there is nothing to flush on tmpfs anyway).
 *
 * Note that lmdb-js reuses one read transaction (a snapshot) until the event loop turns or this
 * process writes, so a tight synchronous read loop does not see other processes' writes made
 * meanwhile.
 *
 * lmdb-js loads a prebuilt native addon from the optional npm package `@lmdb/lmdb-linux-x64`
 * (no install script needed); if it cannot load, the factory reports why and returns undefined.
 *
 * @module
 */
import type { Peer, PeerFactoryOptions } from "./types.ts";
import {
  allocatedBytes,
  errorMessage,
  makeScratchDir,
  packageVersion,
  removeScratchDir,
  warnUnavailable,
} from "./types.ts";

/** Options of {@linkcode openLmdbPeer}. */
export interface LmdbPeerOptions extends PeerFactoryOptions {
  /**
   * Directory of an existing environment to attach to (another process's peer `location`);
   * it is left in place on close. Default: a fresh scratch directory on /dev/shm, removed on
   * close.
   */
  path?: string;
}

/**
 * Opens an lmdb-js peer.
 *
 * @param options Where to open it and what to do when lmdb-js cannot load.
 * @returns The peer, or undefined when lmdb-js cannot load on this runtime (the reason goes to
 * `options.onUnavailable`).
 *
 * @example Set and get
 * ```ts
 * import { openLmdbPeer } from "./lmdb.ts";
 *
 * const peer = await openLmdbPeer();
 * if (peer) {
 *   peer.setString("greeting", "hello");
 *   console.log(peer.getString("greeting")); // hello
 *   await peer.close();
 * }
 * ```
 */
export async function openLmdbPeer(options: LmdbPeerOptions = {}): Promise<Peer | undefined> {
  const name = "lmdb-js";
  const onUnavailable = options.onUnavailable ?? warnUnavailable;
  let lmdb: typeof import("lmdb");
  try {
    lmdb = await import("lmdb");
  } catch (error) {
    onUnavailable(
      name,
      `npm package "lmdb" cannot load here (${errorMessage(error)}); run npm install`,
    );
    return undefined;
  }
  const owned = options.path === undefined;
  const dir = options.path ?? makeScratchDir("lmdb");
  let db: ReturnType<typeof lmdb.open<string, string>>;
  try {
    db = lmdb.open<string, string>({ path: dir, encoding: "string", noSync: true });
    // Touch the native layer now, so a broken addon shows here rather than mid-benchmark.
    db.get("\u0000probe");
  } catch (error) {
    if (owned) removeScratchDir(dir);
    onUnavailable(name, `lmdb-js cannot open a database here (${errorMessage(error)})`);
    return undefined;
  }
  let closed = false;
  return {
    name,
    description: `lmdb ${
      packageVersion("lmdb")
    }, ${dir}, encoding "string", putSync per write, noSync`,
    sharesAcrossProcesses: true,
    location: dir,
    getBytes(key) {
      return db.getBinary(key);
    },
    getString(key) {
      // With encoding "string", get() decodes UTF-8 natively, whatever was stored.
      return db.get(key);
    },
    setBytes(key, value) {
      // Raw bytes bypass the "string" encoding; the cast only widens lmdb-js's value type.
      db.putSync(key, value as unknown as string);
    },
    setString(key, value) {
      db.putSync(key, value);
    },
    delete(key) {
      return db.removeSync(key);
    },
    add(key, value) {
      // MDB_NOOVERWRITE: the put fails, and returns false, when the key has a value.
      return db.putSync(key, value, { noOverwrite: true } as never) as unknown as boolean;
    },
    increment(key) {
      // A read and a write in one synchronous write transaction: no other writer in between.
      return db.transactionSync(() => {
        const next = Number(db.get(key) ?? 0) + 1;
        db.put(key, String(next));
        return next;
      });
    },
    async close() {
      if (closed) return;
      closed = true;
      await db.close();
      if (owned) removeScratchDir(dir);
    },
    memoryBytes() {
      return closed ? undefined : allocatedBytes(dir);
    },
  };
}
