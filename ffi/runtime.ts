/**
 * Runtime detection, in one place. memalloc runs on Deno and on Bun; everything that differs
 * between them is chosen here.
 *
 * @module
 */

/** Which JavaScript runtime this module is running on. */
export type RuntimeName = "deno" | "bun" | "other";

/** The runtime this module is running on, detected once at load. */
export const runtime: RuntimeName = "Bun" in globalThis
  ? "bun"
  : "Deno" in globalThis
  ? "deno"
  : "other";
