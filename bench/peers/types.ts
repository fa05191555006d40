/**
 * The common interface of the benchmark peers: the tools a user would reach for instead of
 * memalloc (an in-process `Map`, lmdb-js, SQLite, Redis), each behind the same small key/value
 * surface so that one benchmark body can drive all of them.
 *
 * Two interfaces, because the tools differ in kind, not in degree:
 * - {@linkcode Peer} is synchronous: `Map`, lmdb-js (`get`/`putSync`), SQLite (prepared
 *   statements). memalloc plugs in here.
 * - {@linkcode AsyncPeer} returns promises: Redis, which is a round trip over loopback TCP.
 *   Benchmarks measure it one awaited request at a time (what a cache lookup inside request
 *   handling does); where {@linkcode AsyncPeer.pipelines} is true they may also measure batches
 *   of requests in flight together, and must label that figure as pipelined.
 *
 * The module also holds the few helpers the peer modules share (scratch directories on
 * `/dev/shm`, cleanup at process exit, bytes allocated by files, package versions).
 *
 * @module
 */
import { once } from "node:events";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

/** What every peer tells about itself, sync or async. */
export interface PeerInfo {
  /** Short name for tables: `"Map"`, `"lmdb-js"`, `"SQLite (node:sqlite)"`, `"Redis (node-redis)"`. */
  readonly name: string;
  /** One line on versions and configuration, for tables and result files. */
  readonly description: string;
  /** Whether another process can see the values this peer writes. */
  readonly sharesAcrossProcesses: boolean;
  /**
   * Where another process opens the same data: a directory (lmdb-js), a database file (SQLite)
   * or a `redis://` URL; undefined for in-process peers. Pass it as the `path`/`url` option of
   * the same factory in the other process.
   */
  readonly location?: string | undefined;
}

/** A key/value store with synchronous calls. Strings are stored as UTF-8. */
export interface Peer extends PeerInfo {
  /** The bytes stored under `key`, or undefined when there is none. */
  getBytes(key: string): Uint8Array | undefined;
  /** The string stored under `key`, or undefined when there is none. */
  getString(key: string): string | undefined;
  /** Stores `value` under `key`, replacing any value there. */
  setBytes(key: string, value: Uint8Array): void;
  /** Stores `value` under `key`, replacing any value there. */
  setString(key: string, value: string): void;
  /**
   * Removes `key`; true when there was a value to remove, false when there was none (every peer
   * here tells; void is allowed for a store that cannot).
   */
  delete(key: string): boolean | void;
  /**
   * Adds 1 to the integer stored under `key` (0 when there is none) as one atomic step, and
   * returns the new value: the peer's own counter operation (a transaction, an UPSERT).
   */
  increment?(key: string): number;
  /**
   * Stores `value` under `key` only when there is no value there, as one step; true when it
   * stored it (the peer's own put-if-absent: `SET NX`, `INSERT OR IGNORE`, `noOverwrite`).
   */
  add?(key: string, value: string): boolean;
  /** Stores `value` under `key`, to expire `ttl` ms from now with the peer's own expiry. */
  setStringTtl?(key: string, value: string, ttl: number): void;
  /** The string under `key` as {@linkcode setStringTtl} wrote it, or undefined once expired. */
  getStringTtl?(key: string): string | undefined;
  /**
   * A fixed-window rate limiter's step: adds 1 to the counter under `key` and returns it; a
   * missing or expired counter starts at 1 and expires `ttl` ms from now.
   */
  incrementTtl?(key: string, ttl: number): number;
  /** Removes what {@linkcode setStringTtl} or {@linkcode incrementTtl} wrote, where `delete` does not. */
  deleteTtl?(key: string): boolean | void;
  /** Releases the peer and removes what it created (scratch directories); safe to call twice. */
  close(): void | Promise<void>;
  /**
   * Bytes this peer uses for its data where measurable (blocks allocated on /dev/shm, ...);
   * undefined where not measurable.
   */
  memoryBytes?(): number | undefined;
}

/** A key/value store whose calls are round trips (Redis). Same contract as {@linkcode Peer}. */
export interface AsyncPeer extends PeerInfo {
  /**
   * True when calls issued without awaiting the previous one travel together on one connection
   * (pipelining). Benchmarks report such figures separately, labelled as pipelined.
   */
  readonly pipelines: boolean;
  /** The bytes stored under `key`, or undefined when there is none. */
  getBytes(key: string): Promise<Uint8Array | undefined>;
  /** The string stored under `key`, or undefined when there is none. */
  getString(key: string): Promise<string | undefined>;
  /** Stores `value` under `key`, replacing any value there. */
  setBytes(key: string, value: Uint8Array): Promise<void>;
  /** Stores `value` under `key`, replacing any value there. */
  setString(key: string, value: string): Promise<void>;
  /** Removes `key`; true when there was a value to remove, false when there was none. */
  delete(key: string): Promise<boolean | void>;
  /** Adds 1 to the integer under `key` on the server (`INCR`) and returns the new value. */
  increment?(key: string): Promise<number>;
  /** See {@linkcode Peer.add}. */
  add?(key: string, value: string): Promise<boolean>;
  /** See {@linkcode Peer.setStringTtl}. */
  setStringTtl?(key: string, value: string, ttl: number): Promise<void>;
  /** See {@linkcode Peer.getStringTtl}. */
  getStringTtl?(key: string): Promise<string | undefined>;
  /** See {@linkcode Peer.incrementTtl}. */
  incrementTtl?(key: string, ttl: number): Promise<number>;
  /** See {@linkcode Peer.deleteTtl}. */
  deleteTtl?(key: string): Promise<boolean | void>;
  /** Releases the peer and stops what it started (a server process); safe to call twice. */
  close(): Promise<void>;
  /** Bytes this peer uses for its data where measurable; undefined where not measurable. */
  memoryBytes?(): Promise<number | undefined>;
}

/** Common options of the peer factories. */
export interface PeerFactoryOptions {
  /**
   * Called with the reason when the peer cannot run here (package or binary missing, runtime
   * unsupported); the factory then returns undefined. Default: a warning on stderr.
   */
  onUnavailable?: (name: string, reason: string) => void;
}

/** The default `onUnavailable`: one line on stderr. */
export function warnUnavailable(name: string, reason: string): void {
  console.warn(`Skipping peer ${name}: ${reason}`);
}

const root = fileURLToPath(new URL("../../", import.meta.url));

/**
 * Runs `cleanup` when the process exits without the peer having been closed: on Node's `exit`
 * event (Bun, and Deno at the end of the program and on `process.exit`) and on the `unload`
 * event (Deno, including `Deno.exit`). Best effort: nothing runs when the process is killed,
 * nor under Deno on an uncaught error (Deno then kills child processes itself).
 *
 * @param cleanup Synchronous and safe to call twice.
 * @returns A function that unregisters `cleanup`.
 */
export function atExit(cleanup: () => void): () => void {
  process.once("exit", cleanup);
  globalThis.addEventListener?.("unload", cleanup);
  return () => {
    process.removeListener("exit", cleanup);
    globalThis.removeEventListener?.("unload", cleanup);
  };
}

/** Scratch directories not yet removed; removed at process exit if their peer was not closed. */
const scratchDirs = new Set<string>();
let forgetExitHook: (() => void) | undefined;

/**
 * Creates a fresh scratch directory for a peer's files, on /dev/shm when it exists (so that
 * file-backed peers run from memory like memalloc does), else in the system temp directory.
 * Directories still there when the process exits normally are removed then.
 *
 * @param label Part of the directory name, e.g. `"lmdb"`.
 * @returns The absolute path of the new, empty directory.
 */
export function makeScratchDir(label: string): string {
  const base = existsSync("/dev/shm") ? "/dev/shm" : tmpdir();
  const dir = mkdtempSync(join(base, `memalloc-bench-${label}-`));
  forgetExitHook ??= atExit(removeLeftovers);
  scratchDirs.add(dir);
  return dir;
}

/**
 * Removes a scratch directory made by {@linkcode makeScratchDir}; missing is fine.
 *
 * @param dir The directory to remove with everything in it.
 */
export function removeScratchDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  scratchDirs.delete(dir);
  if (scratchDirs.size === 0) {
    forgetExitHook?.();
    forgetExitHook = undefined;
  }
}

function removeLeftovers(): void {
  for (const dir of scratchDirs) rmSync(dir, { recursive: true, force: true });
  scratchDirs.clear();
}

/**
 * Bytes actually allocated for files (`st_blocks` × 512, so sparse files count only what is
 * backed), summed over `paths`; a directory counts everything under it; missing paths count 0.
 *
 * @param paths Files or directories.
 * @returns The allocated bytes.
 */
export function allocatedBytes(...paths: string[]): number {
  let total = 0;
  for (const path of paths) {
    if (!existsSync(path)) continue;
    const stat = statSync(path);
    if (stat.isDirectory()) {
      for (const name of readdirSync(path)) total += allocatedBytes(join(path, name));
    } else {
      total += stat.blocks * 512;
    }
  }
  return total;
}

/**
 * The installed version of an npm package of this repository, read from its `package.json`
 * under node_modules (package `exports` maps often hide that file from `import`).
 *
 * @param name Package name, e.g. `"lmdb"`.
 * @returns The version, or `"?"` when it cannot be read.
 */
export function packageVersion(name: string): string {
  try {
    const text = readFileSync(join(root, "node_modules", name, "package.json"), "utf8");
    return (JSON.parse(text) as { version?: string }).version ?? "?";
  } catch {
    return "?";
  }
}

/**
 * A short message for a caught value.
 *
 * @param error Anything thrown.
 * @returns Its message, on one line.
 */
export function errorMessage(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split("\n")[0] ?? text;
}

/**
 * A TCP port on 127.0.0.1 that was free a moment ago (another process may take it before it is
 * bound: callers that bind it retry with another).
 *
 * @returns The port.
 */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  server.close();
  await once(server, "close");
  if (address === null || typeof address === "string") throw new Error("No TCP port available");
  return address.port;
}
