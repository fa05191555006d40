/**
 * The libc symbols memalloc calls, in one table per library, with the C prototype beside each
 * parameter, and the Linux constants they take. `deno.ts` and `bun.ts` bind these same tables.
 *
 * Parameter and result types use Deno's names; `bun.ts` maps them to `bun:ffi` types.
 *
 * @module
 */

/** FFI type names shared by the two bindings. */
export type NativeType = "i32" | "u32" | "i64" | "usize" | "pointer" | "buffer" | "void";

/** One foreign function: parameter types and result type. */
export interface SymbolDef {
  readonly parameters: readonly NativeType[];
  readonly result: NativeType;
}

/** Core libc symbols, from `libc.so.6`. */
export const LIBC_SYMBOLS = {
  // int ftruncate(int fd, off_t length);
  ftruncate: { parameters: ["i32", /* int fd */ "i64" /* off_t length */], result: "i32" },
  // int posix_fallocate(int fd, off_t offset, off_t len);  returns an errno value, not -1
  posix_fallocate: {
    parameters: ["i32", /* int fd */ "i64", /* off_t offset */ "i64" /* off_t len */],
    result: "i32",
  },
  // void *mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset);
  mmap: {
    parameters: [
      "pointer", /* void *addr */
      "usize", /* size_t length */
      "i32", /* int prot */
      "i32", /* int flags */
      "i32", /* int fd */
      "i64", /* off_t offset */
    ],
    result: "pointer",
  },
  // int munmap(void *addr, size_t length);
  munmap: { parameters: ["pointer", /* void *addr */ "usize" /* size_t length */], result: "i32" },
  // int flock(int fd, int operation);
  flock: { parameters: ["i32", /* int fd */ "i32" /* int operation */], result: "i32" },
  // int close(int fd);
  close: { parameters: ["i32" /* int fd */], result: "i32" },
  // off_t lseek(int fd, off_t offset, int whence);
  lseek: {
    parameters: ["i32", /* int fd */ "i64", /* off_t offset */ "i32" /* int whence */],
    result: "i64",
  },
  // int fchmod(int fd, mode_t mode);
  fchmod: { parameters: ["i32", /* int fd */ "u32" /* mode_t mode */], result: "i32" },
  // int fchown(int fd, uid_t owner, gid_t group);  (uid_t)-1 leaves that one as it is
  fchown: {
    parameters: ["i32", /* int fd */ "u32", /* uid_t owner */ "u32" /* gid_t group */],
    result: "i32",
  },
  // int statx(int dirfd, const char *pathname, int flags, unsigned int mask, struct statx *buf);
  // One layout on every architecture (fstat's struct stat differs between x86_64 and aarch64).
  statx: {
    parameters: [
      "i32", /* int dirfd */
      "buffer", /* const char *pathname */
      "i32", /* int flags */
      "u32", /* unsigned int mask */
      "buffer", /* struct statx *statxbuf */
    ],
    result: "i32",
  },
  // int kill(pid_t pid, int sig);  sig 0: only whether the process (or thread id) exists
  kill: { parameters: ["i32", /* pid_t pid */ "i32" /* int sig */], result: "i32" },
  // int tgkill(pid_t tgid, pid_t tid, int sig);  sig 0: whether thread tid is in process tgid
  tgkill: {
    parameters: ["i32", /* pid_t tgid */ "i32", /* pid_t tid */ "i32" /* int sig */],
    result: "i32",
  },
  // int clock_gettime(clockid_t clockid, struct timespec *tp);
  clock_gettime: {
    parameters: ["i32", /* clockid_t clockid */ "buffer" /* struct timespec *tp */],
    result: "i32",
  },
  // pid_t getpid(void);
  getpid: { parameters: [], result: "i32" },
  // uid_t geteuid(void);
  geteuid: { parameters: [], result: "u32" },
  // struct passwd *getpwuid(uid_t uid);  pw_name, a char *, is the struct's first field
  getpwuid: { parameters: ["u32" /* uid_t uid */], result: "pointer" },
  // int *__errno_location(void);  the calling thread's errno
  __errno_location: { parameters: [], result: "pointer" },
  // char *strerror(int errnum);
  strerror: { parameters: ["i32" /* int errnum */], result: "pointer" },
} as const satisfies Record<string, SymbolDef>;

/**
 * POSIX shared-memory symbols: in `libc.so.6` since glibc 2.34, in `librt.so.1` before.
 */
export const SHM_SYMBOLS = {
  // int shm_open(const char *name, int oflag, mode_t mode);
  shm_open: {
    parameters: ["buffer", /* const char *name */ "i32", /* int oflag */ "u32" /* mode_t mode */],
    result: "i32",
  },
  // int shm_unlink(const char *name);
  shm_unlink: { parameters: ["buffer" /* const char *name */], result: "i32" },
} as const satisfies Record<string, SymbolDef>;

/**
 * Process-shared robust mutexes: in `libc.so.6` since glibc 2.34, in `libpthread.so.0` before.
 * Every call returns an errno value (0 for success), not -1. They run on the calling thread,
 * which becomes the mutex's owner: never bind them `nonblocking` (Deno would run them on
 * another thread).
 */
export const PTHREAD_SYMBOLS = {
  // int pthread_mutexattr_init(pthread_mutexattr_t *attr);
  pthread_mutexattr_init: { parameters: ["buffer" /* pthread_mutexattr_t *attr */], result: "i32" },
  // int pthread_mutexattr_setpshared(pthread_mutexattr_t *attr, int pshared);
  pthread_mutexattr_setpshared: {
    parameters: ["buffer", /* pthread_mutexattr_t *attr */ "i32" /* int pshared */],
    result: "i32",
  },
  // int pthread_mutexattr_settype(pthread_mutexattr_t *attr, int type);
  pthread_mutexattr_settype: {
    parameters: ["buffer", /* pthread_mutexattr_t *attr */ "i32" /* int type */],
    result: "i32",
  },
  // int pthread_mutexattr_setrobust(pthread_mutexattr_t *attr, int robustness);
  pthread_mutexattr_setrobust: {
    parameters: ["buffer", /* pthread_mutexattr_t *attr */ "i32" /* int robustness */],
    result: "i32",
  },
  // int pthread_mutex_init(pthread_mutex_t *mutex, const pthread_mutexattr_t *attr);
  pthread_mutex_init: {
    parameters: [
      "pointer",
      /* pthread_mutex_t *mutex */ "buffer", /* const pthread_mutexattr_t *attr */
    ],
    result: "i32",
  },
  // int pthread_mutex_trylock(pthread_mutex_t *mutex);
  pthread_mutex_trylock: { parameters: ["pointer" /* pthread_mutex_t *mutex */], result: "i32" },
  // int pthread_mutex_clocklock(pthread_mutex_t *mutex, clockid_t clockid,
  //                             const struct timespec *abstime);  glibc 2.30+
  pthread_mutex_clocklock: {
    parameters: [
      "pointer", /* pthread_mutex_t *mutex */
      "i32", /* clockid_t clockid */
      "buffer", /* const struct timespec *abstime */
    ],
    result: "i32",
  },
  // int pthread_mutex_unlock(pthread_mutex_t *mutex);
  pthread_mutex_unlock: { parameters: ["pointer" /* pthread_mutex_t *mutex */], result: "i32" },
  // int pthread_mutex_consistent(pthread_mutex_t *mutex);
  pthread_mutex_consistent: { parameters: ["pointer" /* pthread_mutex_t *mutex */], result: "i32" },
} as const satisfies Record<string, SymbolDef>;

/**
 * A symbol only glibc has. memalloc's robust mutex lives in shared memory, where every process
 * must agree on `pthread_mutex_t`'s layout: glibc's (40 bytes on x86_64 and aarch64). musl's is
 * the same size with another layout, so a process on another C library uses `flock` instead.
 */
export const GLIBC_SYMBOLS = {
  // const char *gnu_get_libc_version(void);
  gnu_get_libc_version: { parameters: [], result: "pointer" },
} as const satisfies Record<string, SymbolDef>;

/** Where to look for the libraries, in order; `MEMALLOC_LIBC` overrides the first. */
export const LIBC_PATHS: readonly string[] = ["libc.so.6"];
/** Libraries that may hold `shm_open` when libc does not (glibc older than 2.34). */
export const SHM_PATHS: readonly string[] = ["librt.so.1"];
/** Libraries that may hold the pthread functions when libc does not (glibc older than 2.34). */
export const PTHREAD_PATHS: readonly string[] = ["libpthread.so.0"];
/** Environment variable that names the C library to load instead of `libc.so.6`. */
export const LIBC_ENV = "MEMALLOC_LIBC";

// Linux values (the same on x86_64 and aarch64).
/** `open(2)` flags. glibc's `shm_open` adds `O_NOFOLLOW | O_CLOEXEC` itself. */
export const O_RDONLY = 0, O_RDWR = 2, O_CREAT = 0o100, O_EXCL = 0o200;
/** `mmap(2)` protection and flags. */
export const PROT_READ = 1, PROT_WRITE = 2, MAP_SHARED = 1;
/** `flock(2)` operations. */
export const LOCK_SH = 1, LOCK_EX = 2, LOCK_NB = 4, LOCK_UN = 8;
/** `lseek(2)` whence. */
export const SEEK_END = 2;
/** `statx(2)`: `AT_EMPTY_PATH` (stat the descriptor itself) and the basic fields' mask. */
export const AT_EMPTY_PATH = 0x1000, STATX_BASIC_STATS = 0x7ff;
/** `struct statx`: its size and the byte offsets of the fields memalloc reads. */
export const STATX_SIZE = 256, STX_UID = 20, STX_GID = 24, STX_MODE = 28;
/** `pthread_mutexattr_setpshared` / `setrobust` values, and `CLOCK_MONOTONIC`. */
export const PTHREAD_PROCESS_SHARED = 1, PTHREAD_MUTEX_ROBUST = 1, CLOCK_MONOTONIC = 1;
/** `pthread_mutexattr_settype`: the error-checking type. */
export const PTHREAD_MUTEX_ERRORCHECK = 2;
/** Bytes of glibc's `pthread_mutex_t` on x86_64 and aarch64. */
export const MUTEX_BYTES = 40;
/**
 * Byte offset of glibc's `__kind` word in `pthread_mutex_t` (x86_64 and aarch64): the mutex's
 * type and flags, constant from `pthread_mutex_init` on for a robust mutex.
 */
export const MUTEX_KIND_OFFSET = 16;
/** Bytes reserved for a `pthread_mutexattr_t` (glibc: 4 on x86_64, 8 on aarch64). */
export const MUTEXATTR_BYTES = 16;
/** `(uid_t)-1` / `(gid_t)-1`: "leave unchanged" for `fchown`. */
export const NO_ID = 0xffff_ffff;

/** Linux errno numbers memalloc names in its errors (generic table: x86_64, aarch64). */
export const ERRNO_CODES: Readonly<Record<number, string>> = {
  1: "EPERM",
  2: "ENOENT",
  4: "EINTR",
  5: "EIO",
  9: "EBADF",
  11: "EAGAIN",
  12: "ENOMEM",
  13: "EACCES",
  14: "EFAULT",
  16: "EBUSY",
  17: "EEXIST",
  19: "ENODEV",
  20: "ENOTDIR",
  21: "EISDIR",
  22: "EINVAL",
  23: "ENFILE",
  24: "EMFILE",
  27: "EFBIG",
  28: "ENOSPC",
  30: "EROFS",
  35: "EDEADLK",
  36: "ENAMETOOLONG",
  37: "ENOLCK",
  38: "ENOSYS",
  40: "ELOOP",
  75: "EOVERFLOW",
  95: "EOPNOTSUPP",
  110: "ETIMEDOUT",
  122: "EDQUOT",
};
/** An empty C string, for `statx`'s path with `AT_EMPTY_PATH`. */
export const EMPTY_PATH: Uint8Array = new Uint8Array(1);

/** errno values memalloc acts on. */
export const EINTR = 4, ENOENT = 2, EEXIST = 17, EWOULDBLOCK = 11, EPERM = 1;
/** errno values the mutex functions return. */
export const EBUSY = 16,
  EINVAL = 22,
  EDEADLK = 35,
  ETIMEDOUT = 110,
  EOWNERDEAD = 130,
  ENOTRECOVERABLE = 131;

/** A `pthread_mutex_t *` as the runtime's FFI passes it (a pointer object or a number). */
export type MutexPointer = unknown;

/**
 * The process-shared robust mutex functions, where the C library is glibc. Each returns an
 * errno value, 0 for success.
 */
export interface MutexOps {
  /** The pointer for a mutex at `address` (the mapping's address plus its offset). */
  pointer(address: bigint): MutexPointer;
  /** Initialises a process-shared, robust mutex there (not locked). */
  init(mutex: MutexPointer): number;
  trylock(mutex: MutexPointer): number;
  /** `pthread_mutex_clocklock` on `CLOCK_MONOTONIC`, giving up after `timeoutMs`. */
  lockWithin(mutex: MutexPointer, timeoutMs: number): number;
  unlock(mutex: MutexPointer): number;
  consistent(mutex: MutexPointer): number;
}

/** A mapping made by {@linkcode Libc.mmapShared}. */
export interface Mapping {
  /** The mapped bytes. Detached by {@linkcode Libc.munmap}. */
  readonly buffer: ArrayBuffer;
  /** The mapping's address, for `munmap`. */
  readonly address: bigint;
  /** Mapped length in bytes. */
  readonly length: number;
}

/**
 * libc as both runtimes expose it: plain numbers in and out. Functions return what the C
 * function returns (`-1` on failure, then {@linkcode Libc.errno} tells why).
 */
export interface Libc {
  /** The library paths that were loaded. */
  readonly paths: readonly string[];
  shm_open(name: Uint8Array, oflag: number, mode: number): number;
  shm_unlink(name: Uint8Array): number;
  ftruncate(fd: number, length: number): number;
  posix_fallocate(fd: number, offset: number, length: number): number;
  flock(fd: number, operation: number): number;
  close(fd: number): number;
  lseek(fd: number, offset: number, whence: number): number;
  fchmod(fd: number, mode: number): number;
  fchown(fd: number, owner: number, group: number): number;
  /** `statx(fd, "", AT_EMPTY_PATH, mask, buf)`: fills `buf` (`STATX_SIZE` bytes). */
  fstatx(fd: number, mask: number, buf: Uint8Array): number;
  getpid(): number;
  geteuid(): number;
  kill(pid: number, signal: number): number;
  tgkill(pid: number, tid: number, signal: number): number;
  /** The mutex functions, or `undefined` when the C library is not glibc. */
  readonly mutex: MutexOps | undefined;
  /** The user name of a uid (`getpwuid`), or `undefined` when it has none. */
  userName(uid: number): string | undefined;
  /** The calling thread's errno, as left by the last failed call. */
  errno(): number;
  /** The C library's message for an errno value. */
  strerror(errno: number): string;
  /** `mmap(NULL, length, PROT_READ|PROT_WRITE, MAP_SHARED, fd, 0)`; `null` on failure. */
  mmapShared(fd: number, length: number): Mapping | null;
  /** `munmap` the mapping and detach its buffer, so stale views read nothing instead of crashing. */
  munmap(mapping: Mapping): number;
}

/**
 * Opens the first library of `paths` that loads, the same way for every binding.
 *
 * @param paths The libraries to try, in order.
 * @param open The binding's own `dlopen` of one path (throws when it cannot).
 * @param fatal An error that must not be retried with the next path (a missing permission), as
 * the one to throw instead; `undefined` to go on.
 * @returns What `open` returned, and the path that loaded.
 * @throws {Error} Naming every path and why it did not load.
 */
export function openFirst<T>(
  paths: readonly string[],
  open: (path: string) => T,
  fatal: (error: unknown) => Error | undefined = () => undefined,
): { library: T; path: string } {
  const failures: string[] = [];
  for (const path of paths) {
    try {
      return { library: open(path), path };
    } catch (error) {
      const stop = fatal(error);
      if (stop !== undefined) throw stop;
      failures.push(`${path}: ${(error as Error).message}`);
    }
  }
  throw new Error(`Cannot load the C library: ${failures.join("; ")}`);
}

/** Appends the NUL that C strings end with. */
export function cString(text: string): Uint8Array {
  const bytes = new TextEncoder().encode(text);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}

/** `(void *)-1`, what `mmap` returns on failure. */
export const MAP_FAILED = 0xffff_ffff_ffff_ffffn;

/** The pthread functions as a binding exposes them, pointers already in the runtime's form. */
export interface RawPthread {
  pthread_mutexattr_init(attr: Uint8Array): number;
  pthread_mutexattr_setpshared(attr: Uint8Array, pshared: number): number;
  pthread_mutexattr_setrobust(attr: Uint8Array, robustness: number): number;
  pthread_mutexattr_settype(attr: Uint8Array, type: number): number;
  pthread_mutex_init(mutex: MutexPointer, attr: Uint8Array): number;
  pthread_mutex_trylock(mutex: MutexPointer): number;
  pthread_mutex_clocklock(mutex: MutexPointer, clock: number, abstime: Uint8Array): number;
  pthread_mutex_unlock(mutex: MutexPointer): number;
  pthread_mutex_consistent(mutex: MutexPointer): number;
}

/**
 * {@linkcode MutexOps} over a binding's raw functions: the same attribute set-up and deadline
 * arithmetic for both runtimes.
 */
export function mutexOps(
  raw: RawPthread,
  clockGettime: (clock: number, timespec: Uint8Array) => number,
  pointer: (address: bigint) => MutexPointer,
): MutexOps {
  const attr = new Uint8Array(MUTEXATTR_BYTES);
  const timespec = new BigInt64Array(2); // struct timespec { time_t tv_sec; long tv_nsec; }
  const timespecBytes = new Uint8Array(timespec.buffer);
  return {
    pointer,
    init(mutex) {
      attr.fill(0);
      return raw.pthread_mutexattr_init(attr) ||
        raw.pthread_mutexattr_setpshared(attr, PTHREAD_PROCESS_SHARED) ||
        raw.pthread_mutexattr_setrobust(attr, PTHREAD_MUTEX_ROBUST) ||
        // Error-checking: a thread that locks it again gets EDEADLK instead of waiting on itself.
        raw.pthread_mutexattr_settype(attr, PTHREAD_MUTEX_ERRORCHECK) ||
        raw.pthread_mutex_init(mutex, attr);
    },
    trylock: (mutex) => raw.pthread_mutex_trylock(mutex),
    lockWithin(mutex, timeoutMs) {
      if (clockGettime(CLOCK_MONOTONIC, timespecBytes) !== 0) return EINVAL;
      const nanos = Number(timespec[1]) + Math.round((timeoutMs % 1000) * 1e6);
      timespec[0]! += BigInt(Math.floor(timeoutMs / 1000) + Math.floor(nanos / 1e9));
      timespec[1] = BigInt(nanos % 1e9);
      return raw.pthread_mutex_clocklock(mutex, CLOCK_MONOTONIC, timespecBytes);
    },
    unlock: (mutex) => raw.pthread_mutex_unlock(mutex),
    consistent: (mutex) => raw.pthread_mutex_consistent(mutex),
  };
}
