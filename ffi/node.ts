/**
 * The libc tables of `libc.ts`, bound with `node:ffi` (Node.js 26.1 and later). Loaded only
 * under Node: `node:ffi` is reached through a dynamic import that Deno and Bun never resolve.
 *
 * `node:ffi` passes pointers as bigints and calls every function on the calling thread, so the
 * robust mutex is locked and unlocked by the thread that owns it, as on the other runtimes.
 *
 * @module
 */
import { MemallocError } from "../errors.ts";
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

/** The oldest Node.js major version with `node:ffi`. */
export const NODE_FFI_MAJOR = 26;

/** One function signature as `node:ffi` takes it. */
interface NodeSignature {
  arguments: string[];
  return: string;
}

/** The part of `node:ffi` memalloc uses. */
interface NodeFfi {
  dlopen(
    path: string,
    definitions: Record<string, NodeSignature>,
  ): {
    lib: { close(): void };
    functions: Record<string, (...args: unknown[]) => unknown>;
  };
  toArrayBuffer(pointer: bigint, length: number, copy: boolean): ArrayBuffer;
  getInt32(pointer: bigint, offset: number): number;
  getUint64(pointer: bigint, offset: number): bigint;
  toString(pointer: bigint): string;
}

const NODE_TYPES: Record<NativeType, string> = {
  i32: "i32",
  u32: "u32",
  i64: "i64",
  usize: "u64",
  pointer: "pointer",
  buffer: "buffer",
  void: "void",
};

function toNode(table: Record<string, SymbolDef>): Record<string, NodeSignature> {
  const out: Record<string, NodeSignature> = {};
  for (const [name, def] of Object.entries(table)) {
    out[name] = {
      arguments: def.parameters.map((t) => NODE_TYPES[t]),
      return: NODE_TYPES[def.result],
    };
  }
  return out;
}

/**
 * The error for a Node.js that cannot give memalloc its FFI: too old, started with
 * `--no-experimental-ffi`, built without FFI, or under the permission model without
 * `--allow-ffi`.
 */
function runtimeError(cause: unknown): MemallocError {
  const version = (globalThis as { process?: { versions?: { node?: string } } }).process?.versions
    ?.node ?? "unknown";
  const major = Number(version.split(".")[0]);
  const code = (cause as { code?: unknown } | undefined)?.code;
  const why = major < NODE_FFI_MAJOR
    ? `this is Node.js ${version}, and node:ffi came with Node.js ${NODE_FFI_MAJOR}.1: upgrade to Node.js ${NODE_FFI_MAJOR}.1 or later and start it with --experimental-ffi`
    : code === "ERR_ACCESS_DENIED"
    ? `the permission model denies FFI on Node.js ${version}: add --allow-ffi to the node command`
    : `node:ffi is not available on Node.js ${version}: start node with --experimental-ffi (and without --no-experimental-ffi), from a build that has FFI`;
  return new MemallocError(`memalloc calls libc through node:ffi: ${why}`, {
    code: "ERR_MEMALLOC_RUNTIME",
    cause,
  });
}

type Fn<A extends unknown[], R> = (...args: A) => R;

/**
 * Binds libc for Node.js.
 *
 * @throws {MemallocError} `ERR_MEMALLOC_RUNTIME` when this Node.js has no usable `node:ffi`.
 */
export async function bindLibc(): Promise<Libc> {
  let ffi: NodeFfi;
  try {
    const specifier = "node:ffi";
    ffi = (await import(specifier)) as NodeFfi;
    if (typeof ffi.dlopen !== "function") ffi = (ffi as unknown as { default: NodeFfi }).default;
  } catch (error) {
    throw runtimeError(error);
  }
  const override = readEnv(LIBC_ENV);

  const open = (paths: readonly string[], table: Record<string, SymbolDef>) => {
    const { library, path } = openFirst(
      paths,
      (path) => ffi.dlopen(path, toNode(table)).functions,
      (error) =>
        (error as { code?: unknown }).code === "ERR_ACCESS_DENIED"
          ? runtimeError(error)
          : undefined,
    );
    return { functions: library, path };
  };

  const libc = open(override === undefined ? LIBC_PATHS : [override], LIBC_SYMBOLS);
  const shm = open([libc.path, ...SHM_PATHS], SHM_SYMBOLS);
  const c = libc.functions;
  const errnoPointer = (c.__errno_location as Fn<[], bigint>)();
  const mmap = c.mmap as Fn<[null, bigint, number, number, number, bigint], bigint>;
  const munmap = c.munmap as Fn<[bigint, bigint], number>;
  const strerror = c.strerror as Fn<[number], bigint>;
  const lseek = c.lseek as Fn<[number, bigint, number], bigint>;
  const ftruncate = c.ftruncate as Fn<[number, bigint], number>;
  const fallocate = c.posix_fallocate as Fn<[number, bigint, bigint], number>;
  const statx = c.statx as Fn<[number, Uint8Array, number, number, Uint8Array], number>;
  const clockGettime = c.clock_gettime as Fn<[number, Uint8Array], number>;
  const getpwuid = c.getpwuid as Fn<[number], bigint>;

  // The robust mutex functions, where libc is glibc (it has gnu_get_libc_version): another C
  // library's pthread_mutex_t may have another layout.
  let mutex: MutexOps | undefined;
  try {
    open([libc.path], GLIBC_SYMBOLS);
    const p = open([libc.path, ...PTHREAD_PATHS], PTHREAD_SYMBOLS).functions;
    mutex = mutexOps(p as unknown as RawPthread, clockGettime, (address) => address);
  } catch {
    mutex = undefined;
  }

  return {
    paths: libc.path === shm.path ? [libc.path] : [libc.path, shm.path],
    shm_open: shm.functions.shm_open as Fn<[Uint8Array, number, number], number>,
    shm_unlink: shm.functions.shm_unlink as Fn<[Uint8Array], number>,
    ftruncate: (fd, length) => ftruncate(fd, BigInt(length)),
    posix_fallocate: (fd, offset, length) => fallocate(fd, BigInt(offset), BigInt(length)),
    flock: c.flock as Fn<[number, number], number>,
    close: c.close as Fn<[number], number>,
    lseek: (fd, offset, whence) => Number(lseek(fd, BigInt(offset), whence)),
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
      const name = entry === 0n ? 0n : ffi.getUint64(entry, 0);
      return name === 0n ? undefined : ffi.toString(name);
    },
    errno: () => ffi.getInt32(errnoPointer, 0),
    strerror(errno: number): string {
      const message = strerror(errno);
      return message === 0n ? `errno ${errno}` : ffi.toString(message);
    },
    mmapShared(fd: number, length: number): Mapping | null {
      const address = mmap(null, BigInt(length), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0n);
      if (address === 0n || address === MAP_FAILED) return null;
      // copy = false: a view of the mapping itself, which every other process sees too.
      return { buffer: ffi.toArrayBuffer(address, length, false), address, length };
    },
    munmap(mapping: Mapping): number {
      // Detach first: any view left over the mapping then reads nothing instead of faulting.
      if (!mapping.buffer.detached) mapping.buffer.transfer(0);
      return munmap(mapping.address, BigInt(mapping.length));
    },
  };
}
