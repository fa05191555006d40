/**
 * memalloc: named values shared between Deno and Bun processes through POSIX shared memory.
 *
 * @example Telling memalloc's errors apart
 * ```ts
 * import { MemallocError } from "@memalloc/memalloc";
 *
 * const error = new MemallocError('Cannot open store "sessions": permission denied (EACCES)', {
 *   code: "EACCES",
 * });
 * console.log(error instanceof MemallocError, error.code); // true EACCES
 * ```
 *
 * @module
 */
export { MemallocError, type MemallocErrorCode, type MemallocErrorOptions } from "./errors.ts";
