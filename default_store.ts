/**
 * The default store and the module-level functions on it (`write`, `read`, ...): the seed's
 * API, where one process-wide store is opened at the first call.
 *
 * @module
 */
import { MemallocError } from "./errors.ts";
import { checkName } from "./ffi/segment.ts";
import { readEnv } from "./ffi/runtime.ts";
import { Memalloc, type MemallocStats, type MemallocWatchEntry } from "./memalloc.ts";
import {
  checkOptions,
  DEFAULT_STORE,
  type MemallocIncrementOptions,
  type MemallocListOptions,
  type MemallocOptions,
  type MemallocReadOptions,
  type MemallocTtlOptions,
  type MemallocWatchOptions,
  type MemallocWriteOptions,
} from "./options.ts";
/** The environment variable that names the default store, where the runtime lets memalloc read it. */
export const STORE_ENV = "MEMALLOC_STORE";

let defaultStore: Memalloc | undefined;
let chosen: { name: string; options: MemallocOptions | undefined } | undefined;

/**
 * Chooses the store that the module-level functions ({@linkcode write}, {@linkcode read}, ...)
 * use, before their first call. Without it they use the store named by the `MEMALLOC_STORE`
 * environment variable (read only where the runtime already allows it: under Deno, with
 * `--allow-env=MEMALLOC_STORE`), else `"default"`. Every application on a machine that uses the
 * default name shares one store, and one's `purge()` empties the others': give each
 * application a name of its own.
 *
 * @param name The store name: 1 to 246 UTF-8 bytes without `/`.
 * @param options `maxMemory`, `autoclean`, `mode` and `trust`, as for {@linkcode Memalloc.open}.
 * @throws {TypeError} For a bad name or option type, or an unknown option.
 * @throws {RangeError} For a name too long or an option out of range.
 * @throws {MemallocError} With code `ERR_MEMALLOC_DEFAULT_OPEN` when a module-level function
 * has already opened another default store; nothing changes.
 *
 * @example An application's own default store
 * ```ts
 * import * as memalloc from "./mod.ts";
 *
 * const name = `doc-${crypto.randomUUID()}`;
 * memalloc.setDefaultStore(name, { maxMemory: 1 << 20 });
 * memalloc.write("config", { theme: "dark" });
 * console.log(memalloc.defaultMemalloc().name === name); // true
 * memalloc.Memalloc.unlink(name);
 * ```
 */
export function setDefaultStore(name: string, options?: MemallocOptions): void {
  checkName(name);
  checkOptions(options);
  if (defaultStore !== undefined && (defaultStore.name !== name || options !== undefined)) {
    throw new MemallocError(
      `Cannot set the default store to "${name}": the default store "${defaultStore.name}" is already open; call setDefaultStore() before the first module-level call`,
      { code: "ERR_MEMALLOC_DEFAULT_OPEN", store: defaultStore.name },
    );
  }
  chosen = { name, options };
}

/**
 * The name of the store the module-level functions use (or will use on their first call): the
 * one given to {@linkcode setDefaultStore}, else `MEMALLOC_STORE`, else `"default"`.
 *
 * @returns The store name.
 * @throws {TypeError} When `MEMALLOC_STORE` holds something that is not a store name.
 * @throws {RangeError} When `MEMALLOC_STORE` is too long to be a store name.
 *
 * @example Where the module-level functions write
 * ```ts
 * import { defaultStoreName } from "./mod.ts";
 *
 * console.log(`/dev/shm/memalloc.${defaultStoreName()}`);
 * ```
 */
export function defaultStoreName(): string {
  if (defaultStore !== undefined) return defaultStore.name;
  if (chosen !== undefined) return chosen.name;
  const name = readEnv(STORE_ENV);
  if (name === undefined) return DEFAULT_STORE;
  try {
    checkName(name);
  } catch (error) {
    const Type = error instanceof RangeError ? RangeError : TypeError;
    throw new Type(`${STORE_ENV} does not name a store: ${(error as Error).message}`);
  }
  return name;
}

/**
 * The store that the module-level functions use, opened on first use and kept open: the one
 * chosen by {@linkcode setDefaultStore}, else the one `MEMALLOC_STORE` names, else
 * `"default"` (50 MiB, watermark 0.8).
 *
 * @returns The default store.
 * @throws {TypeError} When `MEMALLOC_STORE` holds something that is not a store name.
 * @throws {MemallocError} When it cannot be opened.
 *
 * @example Figures of the default store
 * ```ts
 * import { defaultMemalloc, Memalloc, setDefaultStore } from "./mod.ts";
 *
 * setDefaultStore(`doc-${crypto.randomUUID()}`);
 * const store = defaultMemalloc();
 * console.log(store.maxMemory); // 52428800
 * Memalloc.unlink(store.name);
 * ```
 */
export function defaultMemalloc(): Memalloc {
  if (defaultStore === undefined) {
    defaultStore = Memalloc.open(defaultStoreName(), chosen?.options);
  }
  return defaultStore;
}

/**
 * Writes a value in the default store; see {@linkcode Memalloc.write}.
 *
 * @param name Entry name: a non-empty string of at most 250 UTF-8 bytes.
 * @param value A string, a `Uint8Array`, a number, or any value cbor-x can encode.
 * @param options `ifVersion`: write only over that version (`null`: only when there is none);
 * `ttl`: time to live in ms.
 * @returns Whether the value was written: always `true` without `ifVersion`.
 * @throws {TypeError} For a bad name or a value that cannot be stored.
 * @throws {RangeError} For a name too long or a value too large for the store.
 *
 * @example The PHP library's example, line for line
 * ```ts
 * import * as memalloc from "./mod.ts";
 *
 * // This example's own store; without this line the functions use "default" (or $MEMALLOC_STORE).
 * memalloc.setDefaultStore(`doc-${crypto.randomUUID()}`, { maxMemory: 1 << 20 });
 * memalloc.write("var1", "Foobar");
 * let data = memalloc.read("var1");
 * data += "123";
 * memalloc.write("var1", data);
 * console.log(memalloc.read("var1")); // Foobar123
 * memalloc.delete("var1");
 * memalloc.Memalloc.unlink(memalloc.defaultStoreName());
 * ```
 */
export function write(name: string, value: unknown, options?: MemallocWriteOptions): boolean {
  return defaultMemalloc().write(name, value, options);
}

/**
 * Writes a value to the default store only when the name has none; see
 * {@linkcode Memalloc.add}.
 *
 * @param name Entry name.
 * @param value The value.
 * @param options `ttl`: time to live in ms.
 * @returns Whether the value was written.
 * @throws {TypeError} For a bad name or a value that cannot be stored.
 *
 * @example Claim a name once
 * ```ts
 * import * as memalloc from "./mod.ts";
 *
 * // This example's own store; without this line the functions use "default" (or $MEMALLOC_STORE).
 * memalloc.setDefaultStore(`doc-${crypto.randomUUID()}`, { maxMemory: 1 << 20 });
 * console.log(memalloc.add("leader", process.pid), memalloc.add("leader", 0)); // true false
 * memalloc.Memalloc.unlink(memalloc.defaultStoreName());
 * ```
 */
export function add(name: string, value: unknown, options?: MemallocTtlOptions): boolean {
  return defaultMemalloc().add(name, value, options);
}

/**
 * Adds to a number in the default store, atomically across processes; see
 * {@linkcode Memalloc.increment}.
 *
 * @param name Entry name.
 * @param delta What to add (default 1).
 * @param options `initial`: the value a missing name starts from (default 0).
 * @returns The new value.
 * @throws {TypeError} For a bad name or delta, or an entry that is not a number.
 * @throws {RangeError} For a delta, initial value or result that is not finite.
 *
 * @example Count requests
 * ```ts
 * import * as memalloc from "./mod.ts";
 *
 * // This example's own store; without this line the functions use "default" (or $MEMALLOC_STORE).
 * memalloc.setDefaultStore(`doc-${crypto.randomUUID()}`, { maxMemory: 1 << 20 });
 * memalloc.increment("requests");
 * console.log(memalloc.increment("requests")); // 2
 * memalloc.Memalloc.unlink(memalloc.defaultStoreName());
 * ```
 */
export function increment(
  name: string,
  delta?: number,
  options?: MemallocIncrementOptions,
): number {
  return defaultMemalloc().increment(name, delta, options);
}

/**
 * Reads, changes and writes one entry of the default store as one step; see
 * {@linkcode Memalloc.update}.
 *
 * @param name Entry name.
 * @param change Computes the new value from the current one (`undefined` deletes).
 * @param options `ttl`: time to live in ms.
 * @returns The value now stored.
 * @throws {TypeError} For a bad name; whatever `change` throws.
 * @throws {MemallocError} `ERR_MEMALLOC_REENTRANT` for a memalloc call on the store inside
 * `change`.
 *
 * @example Keep the highest score
 * ```ts
 * import * as memalloc from "./mod.ts";
 *
 * // This example's own store; without this line the functions use "default" (or $MEMALLOC_STORE).
 * memalloc.setDefaultStore(`doc-${crypto.randomUUID()}`, { maxMemory: 1 << 20 });
 * memalloc.update<number>("best", (best = 0) => Math.max(best, 42));
 * console.log(memalloc.update<number>("best", (best = 0) => Math.max(best, 7))); // 42
 * memalloc.Memalloc.unlink(memalloc.defaultStoreName());
 * ```
 */
export function update<T = unknown>(
  name: string,
  change: (current: T | undefined) => T | undefined,
  options?: MemallocTtlOptions,
): T | undefined {
  return defaultMemalloc().update<T>(name, change, options);
}

/**
 * The names in the default store, oldest-written first; see {@linkcode Memalloc.keys}.
 *
 * @param options `prefix`: only names that start with it; `limit`: at most this many.
 * @returns The names.
 * @throws {TypeError} For bad options.
 * @throws {RangeError} For a limit that is not a whole number from 0 up.
 *
 * @example List names by prefix
 * ```ts
 * import * as memalloc from "./mod.ts";
 *
 * // This example's own store; without this line the functions use "default" (or $MEMALLOC_STORE).
 * memalloc.setDefaultStore(`doc-${crypto.randomUUID()}`, { maxMemory: 1 << 20 });
 * memalloc.write("user:1", "Ada");
 * memalloc.write("user:2", "Grace");
 * console.log(memalloc.keys({ prefix: "user:" })); // [ "user:1", "user:2" ]
 * memalloc.Memalloc.unlink(memalloc.defaultStoreName());
 * ```
 */
export function keys(options?: MemallocListOptions): string[] {
  return defaultMemalloc().keys(options);
}

/**
 * The names and values in the default store, oldest-written first; see
 * {@linkcode Memalloc.entries}.
 *
 * @param options `prefix`: only names that start with it; `limit`: at most this many.
 * @returns An iterator of `[name, value]` pairs.
 * @throws {TypeError} For bad options.
 * @throws {RangeError} For a limit that is not a whole number from 0 up.
 *
 * @example Read every user
 * ```ts
 * import * as memalloc from "./mod.ts";
 *
 * // This example's own store; without this line the functions use "default" (or $MEMALLOC_STORE).
 * memalloc.setDefaultStore(`doc-${crypto.randomUUID()}`, { maxMemory: 1 << 20 });
 * memalloc.write("user:1", { name: "Ada" });
 * for (const [name, user] of memalloc.entries<{ name: string }>({ prefix: "user:" })) {
 *   console.log(name, user.name); // user:1 Ada
 * }
 * memalloc.Memalloc.unlink(memalloc.defaultStoreName());
 * ```
 */
export function entries<T = unknown>(options?: MemallocListOptions): IterableIterator<[string, T]> {
  return defaultMemalloc().entries<T>(options);
}

/**
 * Watches names of the default store for changes; see {@linkcode Memalloc.watch}.
 *
 * @param names The names to watch.
 * @param options `signal`: an `AbortSignal` that ends the watch.
 * @returns An async iterator of the names' states.
 * @throws {TypeError} For bad names or options.
 *
 * @example Stop watching with a signal
 * ```ts
 * import * as memalloc from "./mod.ts";
 *
 * // This example's own store; without this line the functions use "default" (or $MEMALLOC_STORE).
 * memalloc.setDefaultStore(`doc-${crypto.randomUUID()}`, { maxMemory: 1 << 20 });
 * const stop = new AbortController();
 * for await (const [config] of memalloc.watch(["config"], { signal: stop.signal })) {
 *   console.log(config!.version); // null: not written yet
 *   stop.abort();
 * }
 * memalloc.Memalloc.unlink(memalloc.defaultStoreName());
 * ```
 */
export function watch<T = unknown>(
  names: readonly string[],
  options?: MemallocWatchOptions,
): AsyncIterableIterator<MemallocWatchEntry<T>[]> {
  return defaultMemalloc().watch<T>(names, options);
}

/**
 * Whether the default store holds a value under a name; see {@linkcode Memalloc.has}.
 *
 * @param name Entry name.
 * @returns `true` when there is one.
 * @throws {TypeError} For a bad name.
 *
 * @example Check for a name
 * ```ts
 * import * as memalloc from "./mod.ts";
 *
 * // This example's own store; without this line the functions use "default" (or $MEMALLOC_STORE).
 * memalloc.setDefaultStore(`doc-${crypto.randomUUID()}`, { maxMemory: 1 << 20 });
 * console.log(memalloc.has("config")); // false
 * memalloc.Memalloc.unlink(memalloc.defaultStoreName());
 * ```
 */
export function has(name: string): boolean {
  return defaultMemalloc().has(name);
}

/**
 * Reads a value from the default store; see {@linkcode Memalloc.read}.
 *
 * @param name Entry name.
 * @returns The value, or `undefined` when there is no such entry.
 * @throws {TypeError} For a bad name.
 *
 * @example Read what another process wrote
 * ```ts
 * import * as memalloc from "./mod.ts";
 *
 * // This example's own store; without this line the functions use "default" (or $MEMALLOC_STORE).
 * memalloc.setDefaultStore(`doc-${crypto.randomUUID()}`, { maxMemory: 1 << 20 });
 * const config = memalloc.read<{ theme: string }>("config");
 * console.log(config?.theme ?? "no config yet"); // no config yet
 * memalloc.Memalloc.unlink(memalloc.defaultStoreName());
 * ```
 */
export function read<T = unknown>(name: string, options?: MemallocReadOptions): T | undefined {
  return defaultMemalloc().read<T>(name, options);
}

/**
 * Reads a value of the default store as JSON text; see {@linkcode Memalloc.readJson}.
 *
 * @param name Entry name.
 * @returns The JSON text, or `undefined` when there is no such entry.
 * @throws {TypeError} For a bad name, or a value JSON cannot hold as it is.
 *
 * @example Answer with a stored object as it is
 * ```ts
 * import * as memalloc from "./mod.ts";
 *
 * // This example's own store; without this line the functions use "default" (or $MEMALLOC_STORE).
 * memalloc.setDefaultStore(`doc-${crypto.randomUUID()}`, { maxMemory: 1 << 20 });
 * memalloc.write("config", { theme: "dark" });
 * console.log(memalloc.readJson("config")); // {"theme":"dark"}
 * memalloc.Memalloc.unlink(memalloc.defaultStoreName());
 * ```
 */
export function readJson(name: string): string | undefined {
  return defaultMemalloc().readJson(name);
}

/**
 * Removes an entry from the default store; see {@linkcode Memalloc.delete}. `mod.ts` exports
 * it as `delete` too.
 *
 * @param name Entry name.
 * @returns Whether there was such an entry.
 * @throws {TypeError} For a bad name.
 *
 * @example Delete an entry
 * ```ts
 * import * as memalloc from "./mod.ts";
 *
 * // This example's own store; without this line the functions use "default" (or $MEMALLOC_STORE).
 * memalloc.setDefaultStore(`doc-${crypto.randomUUID()}`, { maxMemory: 1 << 20 });
 * memalloc.write("temp", 1);
 * console.log(memalloc.delete("temp")); // true
 * memalloc.Memalloc.unlink(memalloc.defaultStoreName());
 * ```
 */
export function remove(name: string): boolean {
  return defaultMemalloc().delete(name);
}

/**
 * Evicts the oldest entries of the default store until usage is at the watermark; see
 * {@linkcode Memalloc.clean}.
 *
 * @returns The number of entries evicted.
 *
 * @example Clean the default store
 * ```ts
 * import * as memalloc from "./mod.ts";
 *
 * // This example's own store; without this line the functions use "default" (or $MEMALLOC_STORE).
 * memalloc.setDefaultStore(`doc-${crypto.randomUUID()}`, { maxMemory: 1 << 20 });
 * memalloc.write("a", "x");
 * console.log(memalloc.clean()); // 0: usage is under the watermark
 * memalloc.Memalloc.unlink(memalloc.defaultStoreName());
 * ```
 */
export function clean(): number {
  return defaultMemalloc().clean();
}

/**
 * Removes every entry of the default store now; see {@linkcode Memalloc.purge}.
 *
 * @returns The number of entries removed.
 *
 * @example Purge the default store
 * ```ts
 * import * as memalloc from "./mod.ts";
 *
 * // This example's own store; without this line the functions use "default" (or $MEMALLOC_STORE).
 * memalloc.setDefaultStore(`doc-${crypto.randomUUID()}`, { maxMemory: 1 << 20 });
 * memalloc.write("a", 1);
 * memalloc.write("b", 2);
 * console.log(memalloc.purge()); // 2
 * memalloc.Memalloc.unlink(memalloc.defaultStoreName());
 * ```
 */
export function purge(): number {
  return defaultMemalloc().purge();
}

/**
 * Figures for the default store; see {@linkcode Memalloc.stats}.
 *
 * @returns The figures.
 *
 * @example Entries in the default store
 * ```ts
 * import * as memalloc from "./mod.ts";
 *
 * // This example's own store; without this line the functions use "default" (or $MEMALLOC_STORE).
 * memalloc.setDefaultStore(`doc-${crypto.randomUUID()}`, { maxMemory: 1 << 20 });
 * memalloc.write("a", 1);
 * console.log(memalloc.stats().entries); // 1
 * memalloc.Memalloc.unlink(memalloc.defaultStoreName());
 * ```
 */
export function stats(): MemallocStats {
  return defaultMemalloc().stats();
}
