/**
 * The bound libc for the runtime this module runs on, loaded once per thread (each Worker
 * binds its own).
 *
 * @module
 */
import { MemallocError } from "../errors.ts";
import type { Libc } from "./libc.ts";
import { platform, runtime } from "./runtime.ts";

/**
 * The error for an operating system memalloc does not run on, or `undefined` on Linux. Stores
 * are POSIX shared-memory objects in Linux's `/dev/shm`, locked with glibc's robust mutex (or
 * `flock`), reached through `libc.so.6`: macOS and the BSDs have `shm_open`, but neither that
 * library nor the same `pthread_mutex_t`, and Windows has neither.
 *
 * @param os The operating system's name, as `process.platform` gives it.
 * @returns The error to throw, or `undefined` when `os` is `"linux"`.
 */
export function platformError(os: string): MemallocError | undefined {
  if (os === "linux") return undefined;
  return new MemallocError(
    `memalloc runs on Linux only (POSIX shared memory in /dev/shm through glibc or musl), and this is ${os}: run it on Linux, in a Linux container or VM`,
    { code: "ERR_MEMALLOC_PLATFORM" },
  );
}

async function load(): Promise<Libc> {
  const unsupported = platformError(platform);
  if (unsupported !== undefined) throw unsupported;
  if (runtime === "deno") return (await import("./deno.ts")).bindLibc();
  if (runtime === "bun") return await (await import("./bun.ts")).bindLibc();
  if (runtime === "node") return await (await import("./node.ts")).bindLibc();
  throw new MemallocError(
    "memalloc runs on Deno, Bun and Node.js 26.1 or later: this runtime has no FFI that memalloc can use",
    { code: "ERR_MEMALLOC_RUNTIME" },
  );
}

let loaded: Libc | undefined;
let failure: unknown;
try {
  loaded = await load();
} catch (error) {
  failure = error; // reported on first use, so that importing the module never throws
}

/** The bound libc; throws the load error (for example a missing `--allow-ffi`) on first use. */
export function libc(): Libc {
  if (loaded === undefined) throw failure;
  return loaded;
}
