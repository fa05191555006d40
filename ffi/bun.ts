/**
 * The libc tables of `libc.ts`, bound with `bun:ffi`. Loaded only under Bun: `bun:ffi` is
 * reached through a dynamic import that Deno never resolves.
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
  type NativeType,
  openFirst,
  PROT_READ,
  PROT_WRITE,
  PTHREAD_PATHS,
  PTHREAD_SYMBOLS,
  type RawPthread,
  SHM_PATHS,
  SHM_SYMBOLS,
  type SymbolDef,
} from "./libc.ts";
import { readEnv } from "./runtime.ts";

/** The part of `bun:ffi` memalloc uses. */
interface BunFfi {
  dlopen(
    path: string,
    symbols: Record<string, { args: string[]; returns: string }>,
  ): { symbols: Record<string, (...args: unknown[]) => unknown>; close(): void };
  toArrayBuffer(pointer: number, byteOffset: number, byteLength: number): ArrayBuffer;
  read: {
    i32(pointer: number, byteOffset: number): number;
    ptr(pointer: number, byteOffset: number): number;
  };
  CString: new (pointer: number) => { toString(): string };
}

const BUN_TYPES: Record<NativeType, string> = {
  i32: "i32",
  u32: "u32",
  i64: "i64",
  usize: "u64",
  pointer: "ptr",
  buffer: "ptr",
  void: "void",
};

function toBun(
  table: Record<string, SymbolDef>,
): Record<string, { args: string[]; returns: string }> {
  const out: Record<string, { args: string[]; returns: string }> = {};
  for (const [name, def] of Object.entries(table)) {
    out[name] = { args: def.parameters.map((t) => BUN_TYPES[t]), returns: BUN_TYPES[def.result] };
  }
  return out;
}

type Fn<A extends unknown[], R> = (...args: A) => R;

/** Binds libc for Bun. */
export async function bindLibc(): Promise<Libc> {
  const specifier = "bun:ffi";
  const ffi = (await import(specifier)) as BunFfi;
  const override = readEnv(LIBC_ENV);

  const open = (paths: readonly string[], table: Record<string, SymbolDef>) => {
    const { library, path } = openFirst(paths, (path) => ffi.dlopen(path, toBun(table)).symbols);
    return { symbols: library, path };
  };

  const libc = open(override === undefined ? LIBC_PATHS : [override], LIBC_SYMBOLS);
  const shm = open([libc.path, ...SHM_PATHS], SHM_SYMBOLS);
  const c = libc.symbols;
  const errnoPointer = (c.__errno_location as Fn<[], number>)();
  const mmap = c.mmap as Fn<[null, number, number, number, number, number], number | bigint>;
  const munmap = c.munmap as Fn<[number, number], number>;
  const strerror = c.strerror as Fn<[number], number | null>;
  const lseek = c.lseek as Fn<[number, number, number], number | bigint>;
  const statx = c.statx as Fn<[number, Uint8Array, number, number, Uint8Array], number>;
  const clockGettime = c.clock_gettime as Fn<[number, Uint8Array], number>;

  // The robust mutex functions, where libc is glibc (it has gnu_get_libc_version): another C
  // library's pthread_mutex_t may have another layout.
  let mutex: MutexOps | undefined;
  try {
    open([libc.path], GLIBC_SYMBOLS);
    const p = open([libc.path, ...PTHREAD_PATHS], PTHREAD_SYMBOLS).symbols;
    mutex = mutexOps(p as unknown as RawPthread, clockGettime, (address) => Number(address));
  } catch {
    mutex = undefined;
  }
  const getpwuid = c.getpwuid as Fn<[number], number | null>;

  return {
    paths: libc.path === shm.path ? [libc.path] : [libc.path, shm.path],
    shm_open: shm.symbols.shm_open as Fn<[Uint8Array, number, number], number>,
    shm_unlink: shm.symbols.shm_unlink as Fn<[Uint8Array], number>,
    ftruncate: c.ftruncate as Fn<[number, number], number>,
    posix_fallocate: c.posix_fallocate as Fn<[number, number, number], number>,
    flock: c.flock as Fn<[number, number], number>,
    close: c.close as Fn<[number], number>,
    lseek: (fd, offset, whence) => Number(lseek(fd, offset, whence)),
    fchmod: c.fchmod as Fn<[number, number], number>,
    fchown: c.fchown as Fn<[number, number, number], number>,
    fstatx: (fd, mask, buf) => statx(fd, EMPTY_PATH, AT_EMPTY_PATH, mask, buf),
    getpid: c.getpid as Fn<[], number>,
    geteuid: c.geteuid as Fn<[], number>,
    kill: c.kill as Fn<[number, number], number>,
    tgkill: c.tgkill as Fn<[number, number, number], number>,
    mutex,
    userName(uid: number): string | undefined {
      const entry = getpwuid(uid);
      const name = entry === null || entry === 0 ? 0 : ffi.read.ptr(entry, 0);
      return name === 0 ? undefined : new ffi.CString(name).toString();
    },
    errno: () => ffi.read.i32(errnoPointer, 0),
    strerror(errno: number): string {
      const message = strerror(errno);
      return message === null || message === 0
        ? `errno ${errno}`
        : new ffi.CString(message).toString();
    },
    mmapShared(fd: number, length: number): Mapping | null {
      const pointer = mmap(null, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
      // Bun returns (void *)-1 as a bigint: it is not exact as a number.
      if (typeof pointer !== "number" || pointer === 0 || BigInt(pointer) === MAP_FAILED) {
        return null;
      }
      return { buffer: ffi.toArrayBuffer(pointer, 0, length), address: BigInt(pointer), length };
    },
    munmap(mapping: Mapping): number {
      if (!mapping.buffer.detached) mapping.buffer.transfer(0);
      return munmap(Number(mapping.address), mapping.length);
    },
  };
}
