/**
 * The libc tables of `libc.ts`, bound with `Deno.dlopen`. Needs `--allow-ffi`.
 *
 * @module
 */
import {
  AT_EMPTY_PATH,
  EMPTY_PATH,
  GLIBC_SYMBOLS,
  type Libc,
  LIBC_ENV,
  LIBC_PATHS,
  LIBC_SYMBOLS,
  MAP_FAILED,
  MAP_SHARED,
  type Mapping,
  type MutexOps,
  mutexOps,
  openFirst,
  PROT_READ,
  PROT_WRITE,
  PTHREAD_PATHS,
  PTHREAD_SYMBOLS,
  SHM_PATHS,
  SHM_SYMBOLS,
} from "./libc.ts";
import { MemallocError } from "../errors.ts";
import { readEnv } from "./runtime.ts";

function open<S extends Deno.ForeignLibraryInterface>(
  paths: readonly string[],
  symbols: S,
): { library: Deno.DynamicLibrary<S>; path: string } {
  return openFirst(
    paths,
    (path) => Deno.dlopen(path, symbols),
    (error) =>
      error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied
        ? new MemallocError(
          `memalloc calls libc through FFI: run Deno with --allow-ffi (${
            (error as Error).message
          })`,
          { code: "ERR_MEMALLOC_RUNTIME", cause: error },
        )
        : undefined,
  );
}

/**
 * The robust mutex functions, where `libcPath` is glibc (it has `gnu_get_libc_version`) and
 * they are found in it or in libpthread; `undefined` otherwise.
 */
function bindMutex(
  libcPath: string,
  clockGettime: (clock: number, timespec: Uint8Array) => number,
): MutexOps | undefined {
  try {
    Deno.dlopen(libcPath, GLIBC_SYMBOLS).close();
  } catch {
    return undefined; // not glibc: its pthread_mutex_t may have another layout
  }
  let p: Deno.DynamicLibrary<typeof PTHREAD_SYMBOLS>["symbols"];
  try {
    p = open([libcPath, ...PTHREAD_PATHS], PTHREAD_SYMBOLS).library.symbols;
  } catch {
    return undefined;
  }
  const buffer = (bytes: Uint8Array) => bytes as Uint8Array<ArrayBuffer>;
  const ptr = (mutex: unknown) => mutex as Deno.PointerObject;
  return mutexOps(
    {
      pthread_mutexattr_init: (attr) => p.pthread_mutexattr_init(buffer(attr)),
      pthread_mutexattr_setpshared: (attr, value) =>
        p.pthread_mutexattr_setpshared(buffer(attr), value),
      pthread_mutexattr_setrobust: (attr, value) =>
        p.pthread_mutexattr_setrobust(buffer(attr), value),
      pthread_mutexattr_settype: (attr, value) => p.pthread_mutexattr_settype(buffer(attr), value),
      pthread_mutex_init: (mutex, attr) => p.pthread_mutex_init(ptr(mutex), buffer(attr)),
      pthread_mutex_trylock: (mutex) => p.pthread_mutex_trylock(ptr(mutex)),
      pthread_mutex_clocklock: (mutex, clock, abstime) =>
        p.pthread_mutex_clocklock(ptr(mutex), clock, buffer(abstime)),
      pthread_mutex_unlock: (mutex) => p.pthread_mutex_unlock(ptr(mutex)),
      pthread_mutex_consistent: (mutex) => p.pthread_mutex_consistent(ptr(mutex)),
    },
    clockGettime,
    (address) => Deno.UnsafePointer.create(address),
  );
}

/** Binds libc for Deno. */
export function bindLibc(): Libc {
  const override = readEnv(LIBC_ENV);
  const libcPaths = override === undefined ? LIBC_PATHS : [override];
  const libc = open(libcPaths, LIBC_SYMBOLS);
  const shm = open([libc.path, ...SHM_PATHS], SHM_SYMBOLS);
  const c = libc.library.symbols;
  const s = shm.library.symbols;
  const mutex = bindMutex(
    libc.path,
    (clock, timespec) => c.clock_gettime(clock, timespec as Uint8Array<ArrayBuffer>),
  );
  const errnoView = new Deno.UnsafePointerView(c.__errno_location()!);

  return {
    paths: libc.path === shm.path ? [libc.path] : [libc.path, shm.path],
    shm_open: (name, oflag, mode) => s.shm_open(name as Uint8Array<ArrayBuffer>, oflag, mode),
    shm_unlink: (name) => s.shm_unlink(name as Uint8Array<ArrayBuffer>),
    ftruncate: (fd, length) => c.ftruncate(fd, BigInt(length)),
    posix_fallocate: (fd, offset, length) => c.posix_fallocate(fd, BigInt(offset), BigInt(length)),
    flock: c.flock,
    close: c.close,
    lseek: (fd, offset, whence) => Number(c.lseek(fd, BigInt(offset), whence)),
    fchmod: c.fchmod,
    fchown: c.fchown,
    fstatx: (fd, mask, buf) =>
      c.statx(
        fd,
        EMPTY_PATH as Uint8Array<ArrayBuffer>,
        AT_EMPTY_PATH,
        mask,
        buf as Uint8Array<ArrayBuffer>,
      ),
    getpid: c.getpid,
    geteuid: c.geteuid,
    kill: c.kill,
    tgkill: c.tgkill,
    mutex,
    userName(uid: number): string | undefined {
      const entry = c.getpwuid(uid);
      const name = entry === null ? null : new Deno.UnsafePointerView(entry).getPointer(0);
      return name === null ? undefined : Deno.UnsafePointerView.getCString(name);
    },
    errno: () => errnoView.getInt32(0),
    strerror: (errno) => {
      const message = c.strerror(errno);
      return message === null ? `errno ${errno}` : Deno.UnsafePointerView.getCString(message);
    },
    mmapShared(fd: number, length: number): Mapping | null {
      const pointer = c.mmap(null, BigInt(length), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0n);
      const address = pointer === null ? 0n : BigInt(Deno.UnsafePointer.value(pointer));
      if (pointer === null || address === MAP_FAILED) return null;
      return { buffer: Deno.UnsafePointerView.getArrayBuffer(pointer, length), address, length };
    },
    munmap(mapping: Mapping): number {
      // Detach first: any view left over the mapping then reads nothing instead of faulting.
      if (!mapping.buffer.detached) mapping.buffer.transfer(0);
      return c.munmap(Deno.UnsafePointer.create(mapping.address), BigInt(mapping.length));
    },
  };
}
