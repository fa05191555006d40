/**
 * memalloc: named values shared between Deno and Bun processes on one machine, through POSIX
 * shared memory. The runtime's own FFI calls libc; a TypeScript allocator runs inside the
 * mapped segment, so every process that opens a store sees the same entries.
 *
 * The module-level functions use a default store (50 MiB, evicting down to 80% when full), in
 * the style of the original PHP library; {@linkcode Memalloc.open} opens named stores with
 * their own size and watermark.
 *
 * Deno needs `--allow-ffi`. Linux with a tmpfs at `/dev/shm`.
 *
 * @example The default store
 * ```ts
 * import * as memalloc from "@memalloc/memalloc";
 *
 * memalloc.write("var1", "Foobar");
 * let data = memalloc.read("var1");
 * data += "123";
 * memalloc.write("var1", data);
 * console.log(memalloc.read("var1")); // Foobar123
 * memalloc.delete("var1");
 * memalloc.clean(); // evicts the oldest entries if usage is above the watermark
 * ```
 *
 * @example A named store
 * ```ts
 * import { Memalloc } from "@memalloc/memalloc";
 *
 * using sessions = Memalloc.open("doc-sessions", { maxMemory: 8 * 1024 * 1024, autoclean: 0.8 });
 * sessions.write("s:42", { user: 42, expires: new Date(Date.now() + 3_600_000) });
 * console.log(sessions.read("s:42"));
 * sessions.purge();
 * ```
 *
 * @module
 */
export {
  clean,
  DEFAULT_AUTOCLEAN,
  DEFAULT_MAX_MEMORY,
  DEFAULT_STORE,
  defaultMemalloc,
  Memalloc,
  type MemallocEntryInfo,
  type MemallocOptions,
  type MemallocStats,
  purge,
  read,
  remove,
  remove as delete,
  stats,
  write,
} from "./memalloc.ts";
export { MemallocError, type MemallocErrorCode, type MemallocErrorOptions } from "./errors.ts";
