/**
 * memalloc itself behind the {@linkcode Peer} interface, so that the comparison benchmark drives
 * it with the same calls as the other peers.
 *
 * - Strings are written as strings (memalloc stores their UTF-8), bytes as bytes: both raw, no
 *   CBOR. `getBytes` of a string value returns its UTF-8 and `getString` of a bytes value
 *   decodes it, as the other peers do.
 * - {@linkcode MemallocPeer.setValue} / {@linkcode MemallocPeer.getValue} pass any other value
 *   to memalloc as it is (memalloc encodes it as CBOR inside the store), for the structured-value
 *   scenario; the other peers get bytes that the benchmark encoded with cbor-x itself.
 * - The store is a fresh one named `bench-<pid>-<random>` (`/dev/shm/memalloc.bench-*`) unless
 *   `name` is given; a fresh store is unlinked on close, and at process exit if not closed.
 *
 * @module
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import process from "node:process";
import { Memalloc } from "../../mod.ts";
import type { Peer } from "./types.ts";
import { atExit } from "./types.ts";

/** Options of {@linkcode openMemallocPeer}. */
export interface MemallocPeerOptions {
  /**
   * An existing store to attach to (another process's peer `location`); it is left in place on
   * close. Default: a fresh store, unlinked on close.
   */
  name?: string;
  /** `maxMemory` of a fresh store. Default: 256 MiB. */
  maxMemory?: number;
  /** `autoclean` of a fresh store. Default: memalloc's (0.8). */
  autoclean?: number;
}

/** A memalloc peer: the {@linkcode Peer} calls, and structured values as memalloc stores them. */
export interface MemallocPeer extends Peer {
  /** The open store, for figures ({@linkcode Memalloc.stats}) and direct calls. */
  readonly store: Memalloc;
  /** Writes any value memalloc accepts (objects are stored as CBOR by memalloc). */
  setValue(key: string, value: unknown): void;
  /** Reads a value as memalloc returns it (objects decoded from CBOR by memalloc). */
  getValue<T = unknown>(key: string): T | undefined;
}

/** The version in this repository's deno.json, or `"?"`. */
function memallocVersion(): string {
  try {
    const text = readFileSync(new URL("../../deno.json", import.meta.url), "utf8");
    return (JSON.parse(text) as { version?: string }).version ?? "?";
  } catch {
    return "?";
  }
}

/** Default size of a fresh store: room for every scenario of the comparison benchmark. */
const DEFAULT_MAX_MEMORY = 256 << 20;

/**
 * A store name for a fresh benchmark store: `bench-<label>-<pid>-<random>`.
 *
 * @param label Part of the name, e.g. `"compare"`.
 * @returns A name no other process is using.
 */
export function benchStoreName(label: string): string {
  return `bench-${label}-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
}

/**
 * Unlinks the stores that {@linkcode benchStoreName} named for processes that no longer run
 * (a benchmark killed before it could clean up). Linux only: looks for `/proc/<pid>`.
 *
 * @returns The names of the stores removed.
 */
export function removeStaleBenchStores(): string[] {
  if (!existsSync("/dev/shm") || !existsSync("/proc/self")) return [];
  const removed: string[] = [];
  for (const file of readdirSync("/dev/shm")) {
    const match = /^memalloc\.(bench-[a-z]+-(\d+)-[a-z0-9]+)$/.exec(file);
    if (match === null || existsSync(`/proc/${match[2]}`)) continue;
    if (Memalloc.unlink(match[1]!)) removed.push(match[1]!);
  }
  return removed;
}

/**
 * Opens a memalloc peer.
 *
 * @param options The store to attach to, or the size and watermark of a fresh one.
 * @returns The peer; close it to unlink a fresh store.
 * @throws {MemallocError} When the store cannot be opened (for instance `ENOSPC` on /dev/shm).
 *
 * @example Set and get
 * ```ts
 * import { openMemallocPeer } from "./memalloc.ts";
 *
 * const peer = openMemallocPeer({ maxMemory: 1 << 20 });
 * peer.setString("greeting", "hello");
 * console.log(peer.getString("greeting")); // hello
 * peer.setValue("user", { name: "Ada" });
 * console.log(peer.getValue("user")); // { name: "Ada" }
 * peer.close();
 * ```
 */
export function openMemallocPeer(options: MemallocPeerOptions = {}): MemallocPeer {
  const owned = options.name === undefined;
  const name = options.name ?? benchStoreName("peer");
  const forgetUnlink = owned ? atExit(() => void Memalloc.unlink(name)) : () => {};
  let store: Memalloc;
  try {
    store = Memalloc.open(name, {
      maxMemory: options.maxMemory ?? DEFAULT_MAX_MEMORY,
      ...(options.autoclean === undefined ? {} : { autoclean: options.autoclean }),
    });
  } catch (error) {
    if (owned) Memalloc.unlink(name);
    forgetUnlink();
    throw error;
  }
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();
  const notText = (key: string) =>
    new TypeError(`Value of "${key}" is neither a string nor bytes: read it with getValue`);
  let closed = false;
  return {
    name: "memalloc",
    description: `memalloc ${memallocVersion()} (this repository), store "${name}", ` +
      `maxMemory ${store.maxMemory / (1 << 20)} MiB, autoclean ${store.autoclean}, ` +
      `lock-free reads (seqlock), ${
        store.stats().lockKind === "mutex" ? "a robust mutex" : "flock"
      } per write`,
    sharesAcrossProcesses: true,
    location: name,
    store,
    getBytes(key) {
      const value = store.read(key);
      if (value === undefined || value instanceof Uint8Array) return value;
      if (typeof value === "string") return encoder.encode(value);
      throw notText(key);
    },
    getString(key) {
      const value = store.read(key);
      if (value === undefined || typeof value === "string") return value;
      if (value instanceof Uint8Array) return decoder.decode(value);
      throw notText(key);
    },
    setBytes(key, value) {
      store.write(key, value);
    },
    setString(key, value) {
      store.write(key, value);
    },
    delete(key) {
      return store.delete(key);
    },
    increment(key) {
      return store.increment(key);
    },
    add(key, value) {
      return store.add(key, value);
    },
    setStringTtl(key, value, ttl) {
      store.write(key, value, { ttl });
    },
    getStringTtl(key) {
      // Every read checks the expiry: the same call as getString.
      const value = store.read(key);
      if (value === undefined || typeof value === "string") return value;
      if (value instanceof Uint8Array) return decoder.decode(value);
      throw notText(key);
    },
    incrementTtl(key, ttl) {
      return store.increment(key, 1, { ttl });
    },
    setValue(key, value) {
      store.write(key, value);
    },
    getValue<T>(key: string) {
      return store.read<T>(key);
    },
    close() {
      if (closed) return;
      closed = true;
      try {
        store.close();
      } finally {
        if (owned) Memalloc.unlink(name);
        forgetUnlink();
      }
    },
    memoryBytes() {
      return closed ? undefined : store.stats().bytesUsed;
    },
  };
}
