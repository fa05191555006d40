/**
 * The error memalloc throws when a system call fails or a segment cannot be used.
 *
 * @module
 */

/** Codes memalloc uses for failures that are not a system call's errno. */
export type MemallocErrorCode =
  | "ERR_MEMALLOC_FORMAT"
  | "ERR_MEMALLOC_VERSION"
  | "ERR_MEMALLOC_CORRUPT"
  | "ERR_MEMALLOC_CLOSED"
  | "ERR_MEMALLOC_UNTRUSTED"
  | "ERR_MEMALLOC_DEFAULT_OPEN"
  | "ERR_MEMALLOC_LOCK_TIMEOUT"
  | "ERR_MEMALLOC_LOCK_KIND"
  | "ERR_MEMALLOC_LOCK_HELD"
  | "ERR_MEMALLOC_LOCK"
  | "ERR_MEMALLOC_REENTRANT"
  | "ERR_MEMALLOC_RUNTIME"
  | "ERR_MEMALLOC_PLATFORM"
  | "ERR_MEMALLOC_NOT_FOUND"
  | "ERR_MEMALLOC_REMOTE"
  | "ERR_MEMALLOC_CONFLICT";

/** What a {@linkcode MemallocError} carries besides its message. */
export interface MemallocErrorOptions {
  /** The errno code (`"EACCES"`), or one of {@linkcode MemallocErrorCode}. */
  code: string;
  /** The failing system call, when there is one. */
  syscall?: string;
  /** The errno number; 0 when no system call failed. */
  errno?: number;
  /** The store (segment) name. */
  store?: string;
  /** The underlying error, when this one wraps it. */
  cause?: unknown;
}

/**
 * A failed system call on a store's segment, or a segment that memalloc refuses to use (not a
 * memalloc segment, another layout, corrupt, already closed, owned or writable by a user this
 * process does not trust).
 *
 * @example Telling a permission problem apart
 * ```ts
 * import { MemallocError } from "./errors.ts";
 *
 * const error = new MemallocError('Cannot open store "sessions": permission denied (EACCES)', {
 *   code: "EACCES",
 *   syscall: "shm_open",
 *   errno: 13,
 *   store: "sessions",
 * });
 * if (error.code !== "EACCES" || error.errno !== 13) throw new Error("unexpected");
 * ```
 */
export class MemallocError extends Error {
  /** The errno code (`"EACCES"`, `"ENOSPC"`) or a memalloc code (`"ERR_MEMALLOC_FORMAT"`). */
  readonly code: string;
  /** The system call that failed (`"shm_open"`), or `undefined` when none did. */
  readonly syscall: string | undefined;
  /** The errno number, 0 when no system call failed. */
  readonly errno: number;
  /** The store (segment) name the error is about. */
  readonly store: string | undefined;

  /**
   * Makes the error; memalloc throws these, applications rarely need to.
   *
   * @param message The readable message, in sentence case, naming the store and the reason.
   * @param options Code, system call, errno, store name and cause.
   */
  constructor(message: string, options: MemallocErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "MemallocError";
    this.code = options.code;
    this.syscall = options.syscall;
    this.errno = options.errno ?? 0;
    this.store = options.store;
  }
}
