/**
 * The libc tables of `libc.ts`, bound with `Deno.dlopen`. Needs `--allow-ffi`.
 *
 * @module
 */
import {
  AT_EMPTY_PATH,
  EMPTY_PATH,
  type Libc,
  LIBC_ENV,
  LIBC_PATHS,
  LIBC_SYMBOLS,
  MAP_FAILED,
  MAP_SHARED,
  type Mapping,
  PROT_READ,
  PROT_WRITE,
  SHM_PATHS,
  SHM_SYMBOLS,
} from "./libc.ts";
import { readEnv } from "./runtime.ts";

function open<S extends Deno.ForeignLibraryInterface>(
  paths: readonly string[],
  symbols: S,
): { library: Deno.DynamicLibrary<S>; path: string } {
  const failures: string[] = [];
  for (const path of paths) {
    try {
      return { library: Deno.dlopen(path, symbols), path };
    } catch (error) {
      if (
        error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied
      ) {
        throw new Error(
          `memalloc calls libc through FFI: run Deno with --allow-ffi (${
            (error as Error).message
          })`,
          { cause: error },
        );
      }
      failures.push(`${path}: ${(error as Error).message}`);
    }
  }
  throw new Error(`Cannot load the C library: ${failures.join("; ")}`);
}

/** Binds libc for Deno. */
export function bindLibc(): Libc {
  const override = readEnv(LIBC_ENV);
  const libcPaths = override === undefined ? LIBC_PATHS : [override];
  const libc = open(libcPaths, LIBC_SYMBOLS);
  const shm = open([libc.path, ...SHM_PATHS], SHM_SYMBOLS);
  const c = libc.library.symbols;
  const s = shm.library.symbols;
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
