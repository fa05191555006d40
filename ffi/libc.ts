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

/** Where to look for the libraries, in order; `MEMALLOC_LIBC` overrides the first. */
export const LIBC_PATHS: readonly string[] = ["libc.so.6"];
/** Libraries that may hold `shm_open` when libc does not (glibc older than 2.34). */
export const SHM_PATHS: readonly string[] = ["librt.so.1"];
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
  122: "EDQUOT",
};
/** An empty C string, for `statx`'s path with `AT_EMPTY_PATH`. */
export const EMPTY_PATH: Uint8Array = new Uint8Array(1);

/** errno values memalloc acts on. */
export const EINTR = 4, ENOENT = 2, EEXIST = 17, EWOULDBLOCK = 11;

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

/** Appends the NUL that C strings end with. */
export function cString(text: string): Uint8Array {
  const bytes = new TextEncoder().encode(text);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}

/** `(void *)-1`, what `mmap` returns on failure. */
export const MAP_FAILED = 0xffff_ffff_ffff_ffffn;
