/**
 * Deno KV as a shared key/value store: `Deno.openKv(path)` on a database file on /dev/shm,
 * Deno's own SQLite-backed KV (needs `--unstable-kv`). It is what a Deno user reaches for to
 * share counters and sessions between the processes of `deno serve --parallel`.
 *
 * - keys are `[key]`; strings and bytes are stored as themselves;
 * - `delete` checks and deletes atomically, so that it can say whether there was a value;
 * - `increment` is Deno KV's compare-and-set idiom: `get`, then
 *   `atomic().check(entry).set(key, n + 1)`, again on a conflict (a `sum` on a `Deno.KvU64`
 *   would not return the new value);
 * - every call is a promise (Deno KV has no synchronous API): an asynchronous peer, awaited.
 *
 * @module
 */
import { runtime } from "../../ffi/runtime.ts";
import type { AsyncPeer, PeerFactoryOptions } from "./types.ts";
import {
  allocatedBytes,
  errorMessage,
  makeScratchDir,
  removeScratchDir,
  warnUnavailable,
} from "./types.ts";

/** The part of Deno KV used here (its types come only with `--unstable-kv`). */
interface KvEntry {
  key: unknown[];
  value: unknown;
  versionstamp: string | null;
}
interface Kv {
  get(key: unknown[]): Promise<KvEntry>;
  set(key: unknown[], value: unknown, options?: { expireIn?: number }): Promise<unknown>;
  delete(key: unknown[]): Promise<void>;
  atomic(): {
    check(entry: { key: unknown[]; versionstamp: string | null }): ReturnType<Kv["atomic"]>;
    set(key: unknown[], value: unknown, options?: { expireIn?: number }): ReturnType<Kv["atomic"]>;
    delete(key: unknown[]): ReturnType<Kv["atomic"]>;
    commit(): Promise<{ ok: boolean }>;
  };
  close(): void;
}

/**
 * Opens a Deno KV peer on a fresh database file on /dev/shm.
 *
 * @param options What to do when Deno KV is unavailable (not Deno, or no `--unstable-kv`).
 * @returns The peer, or undefined when Deno KV cannot run here.
 *
 * @example Set and get
 * ```ts ignore
 * import { openDenoKvPeer } from "./denokv.ts";
 *
 * const peer = await openDenoKvPeer();
 * if (peer) {
 *   await peer.setString("greeting", "hello");
 *   console.log(await peer.getString("greeting")); // hello
 *   await peer.close();
 * }
 * ```
 */
export async function openDenoKvPeer(
  options: PeerFactoryOptions = {},
): Promise<AsyncPeer | undefined> {
  const onUnavailable = options.onUnavailable ?? warnUnavailable;
  const name = "Deno KV";
  const open = (globalThis as unknown as { Deno?: { openKv?: (path: string) => Promise<Kv> } })
    .Deno?.openKv;
  if (runtime !== "deno") {
    onUnavailable(name, `Deno KV is Deno's own; this is ${runtime}`);
    return undefined;
  }
  if (typeof open !== "function") {
    onUnavailable(name, "Deno.openKv needs --unstable-kv (bench/run.ts passes it)");
    return undefined;
  }
  const dir = makeScratchDir("denokv");
  const path = `${dir}/kv.sqlite3`;
  let kv: Kv;
  try {
    kv = await open(path);
  } catch (error) {
    removeScratchDir(dir);
    onUnavailable(name, `cannot open ${path} (${errorMessage(error)})`);
    return undefined;
  }
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();
  let closed = false;
  return {
    name,
    description: `Deno KV (Deno.openKv, SQLite backend), ${path}; increment by check-and-set`,
    sharesAcrossProcesses: true,
    location: path,
    pipelines: false,
    async getBytes(key) {
      const { value } = await kv.get([key]);
      if (value === null || value === undefined) return undefined;
      return typeof value === "string" ? encoder.encode(value) : value as Uint8Array;
    },
    async getString(key) {
      const { value } = await kv.get([key]);
      if (value === null || value === undefined) return undefined;
      return typeof value === "string" ? value : decoder.decode(value as Uint8Array);
    },
    async setBytes(key, value) {
      await kv.set([key], value);
    },
    async setString(key, value) {
      await kv.set([key], value);
    },
    async delete(key) {
      // kv.delete() does not say whether there was a value: the check-and-delete that does.
      for (;;) {
        const entry = await kv.get([key]);
        if (entry.versionstamp === null) return false;
        if ((await kv.atomic().check(entry).delete([key]).commit()).ok) return true;
      }
    },
    async add(key, value) {
      return (await kv.atomic().check({ key: [key], versionstamp: null }).set([key], value)
        .commit()).ok;
    },
    async setStringTtl(key, value, ttl) {
      await kv.set([key], value, { expireIn: ttl });
    },
    async getStringTtl(key) {
      // Deno KV deletes expired keys some time after they expire, and get() may still return
      // them until then: what a Deno KV user gets.
      const { value } = await kv.get([key]);
      if (value === null || value === undefined) return undefined;
      return typeof value === "string" ? value : decoder.decode(value as Uint8Array);
    },
    async incrementTtl(key, ttl) {
      // The counter with the end of its window, [count, ends]: Deno KV's expireIn does not carry
      // over to the next set, and its expired keys may still be read for a while.
      for (;;) {
        const entry = await kv.get([key]);
        const now = Date.now();
        const window = entry.value as [number, number] | null;
        const live = Array.isArray(window) && window[1] > now;
        const next: [number, number] = live ? [window[0] + 1, window[1]] : [1, now + ttl];
        const expireIn = Math.max(1, next[1] - now);
        if ((await kv.atomic().check(entry).set([key], next, { expireIn }).commit()).ok) {
          return next[0];
        }
      }
    },
    async increment(key) {
      for (;;) {
        const entry = await kv.get([key]);
        const next = (typeof entry.value === "number" ? entry.value : 0) + 1;
        if ((await kv.atomic().check(entry).set([key], next).commit()).ok) return next;
      }
    },
    close() {
      if (!closed) {
        closed = true;
        kv.close();
        removeScratchDir(dir);
      }
      return Promise.resolve();
    },
    memoryBytes() {
      return Promise.resolve(
        closed ? undefined : allocatedBytes(path, `${path}-wal`, `${path}-shm`),
      );
    },
  };
}
