/**
 * memalloc: named values shared between Deno, Bun and Node.js processes on one machine, through
 * POSIX shared memory. The runtime's own FFI calls libc; a TypeScript allocator runs inside the
 * mapped segment, so every process that opens a store sees the same entries.
 *
 * The module-level functions use a default store (50 MiB, evicting down to 80% when full), in
 * the style of the original PHP library: `"default"`, or the name given to
 * {@linkcode setDefaultStore} or in `MEMALLOC_STORE`. {@linkcode Memalloc.open} opens named
 * stores with their own size and watermark.
 *
 * Deno needs `--allow-ffi` and nothing else; Node.js needs 26.1 or later (`node:ffi`). Linux with
 * a tmpfs at `/dev/shm`.
 *
 * @example The default store
 * ```ts
 * import * as memalloc from "@memalloc/memalloc";
 *
 * // This example's own store; without this line the functions use "default" (or $MEMALLOC_STORE).
 * memalloc.setDefaultStore(`doc-${crypto.randomUUID()}`, { maxMemory: 1 << 20 });
 * memalloc.write("var1", "Foobar");
 * let data = memalloc.read("var1");
 * data += "123";
 * memalloc.write("var1", data);
 * console.log(memalloc.read("var1")); // Foobar123
 * memalloc.delete("var1");
 * memalloc.clean(); // evicts the oldest entries if usage is above the watermark
 * memalloc.Memalloc.unlink(memalloc.defaultStoreName());
 * ```
 *
 * @example A named store
 * ```ts
 * import { Memalloc } from "@memalloc/memalloc";
 *
 * const name = `doc-sessions-${crypto.randomUUID()}`;
 * using sessions = Memalloc.open(name, { maxMemory: 8 * 1024 * 1024, autoclean: 0.8 });
 * sessions.write("s:42", { user: 42, expires: new Date(Date.now() + 3_600_000) });
 * console.log(sessions.read("s:42"));
 * Memalloc.unlink(name);
 * ```
 *
 * @module
 */
export {
  Memalloc,
  type MemallocEntryInfo,
  type MemallocListedEntry,
  type MemallocStats,
  type MemallocWatchEntry,
} from "./memalloc.ts";
export {
  DEFAULT_AUTOCLEAN,
  DEFAULT_MAX_MEMORY,
  DEFAULT_STORE,
  type MemallocAbortSignal,
  type MemallocDeleteOptions,
  type MemallocIncrementOptions,
  type MemallocListOptions,
  type MemallocOptions,
  type MemallocReadOptions,
  type MemallocTtlOptions,
  type MemallocWatchOptions,
  type MemallocWriteOptions,
} from "./options.ts";
export {
  add,
  clean,
  defaultMemalloc,
  defaultStoreName,
  entries,
  has,
  increment,
  keys,
  purge,
  read,
  readJson,
  remove,
  remove as delete,
  setDefaultStore,
  stats,
  STORE_ENV,
  update,
  watch,
  write,
} from "./default_store.ts";
export type { MemallocTrust } from "./ffi/segment.ts";
export type { DecodeCacheLimits } from "./frozen.ts";
export type { StoreStats } from "./allocator/store.ts";
export type { FreeBlockBucket, StoreMap, StoreMapCell } from "./allocator/map.ts";
export { MemallocError, type MemallocErrorCode, type MemallocErrorOptions } from "./errors.ts";
