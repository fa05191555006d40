/**
 * The bound libc for the runtime this module runs on, loaded once per thread (each Worker
 * binds its own).
 *
 * @module
 */
import { MemallocError } from "../errors.ts";
import type { Libc } from "./libc.ts";
import { runtime } from "./runtime.ts";

async function load(): Promise<Libc> {
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
