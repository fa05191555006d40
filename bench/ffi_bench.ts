/**
 * What one FFI call, one robust-mutex and one flock lock/unlock pair cost on this runtime.
 *
 * Usage: deno run -A bench/ffi_bench.ts | bun bench/ffi_bench.ts |
 * node --experimental-ffi bench/ffi_bench.ts
 *
 * @module
 */
import { Segment } from "../ffi/segment.ts";
import { runtime } from "../ffi/runtime.ts";
import { libc } from "../ffi/sys.ts";
import { measure, printTable, runtimeVersion, writeResults } from "./_report.ts";

const c = libc();

/** `int abs(int)`: a libc call that never enters the kernel, to time the FFI crossing alone. */
async function bindAbs(): Promise<(n: number) => number> {
  if (runtime === "deno") {
    const lib = Deno.dlopen("libc.so.6", { abs: { parameters: ["i32"], result: "i32" } });
    return lib.symbols.abs;
  }
  if (runtime === "node") {
    const specifier = "node:ffi";
    const ffi = await import(specifier);
    return ffi.dlopen("libc.so.6", { abs: { arguments: ["i32"], return: "i32" } }).functions.abs;
  }
  const specifier = "bun:ffi";
  const ffi = await import(specifier);
  return ffi.dlopen("libc.so.6", { abs: { args: ["i32"], returns: "i32" } }).symbols.abs;
}
const abs = await bindAbs();
const name = `bench-ffi-${crypto.randomUUID()}`;
const mutexName = `${name}-mutex`;
using segment = Segment.open(name, { size: 1 << 20, lock: "flock" });
using mutexSegment = c.mutex === undefined
  ? undefined
  : Segment.open(mutexName, { size: 1 << 20, lock: "mutex" });
try {
  const rows = [
    {
      operation: "FFI call, no syscall (abs)",
      ns: measure((n) => {
        for (let i = 0; i < n; i++) abs(i);
      }, 5_000_000),
    },
    {
      operation: "FFI call + syscall (getpid)",
      ns: measure((n) => {
        for (let i = 0; i < n; i++) c.getpid();
      }, 2_000_000),
    },
    ...(mutexSegment === undefined ? [] : [{
      operation: "robust mutex lock + unlock (Segment)",
      ns: measure((n) => {
        for (let i = 0; i < n; i++) {
          mutexSegment.lock();
          mutexSegment.unlock();
        }
      }, 2_000_000),
    }]),
    {
      operation: "flock LOCK_EX + LOCK_UN",
      ns: measure((n) => {
        for (let i = 0; i < n; i++) {
          segment.lock();
          segment.unlock();
        }
      }, 500_000),
    },
    {
      operation: "flock LOCK_SH + LOCK_UN",
      ns: measure((n) => {
        for (let i = 0; i < n; i++) {
          segment.lock(false);
          segment.unlock();
        }
      }, 500_000),
    },
    {
      operation: "Atomics.add on the mapping",
      ns: measure((n) => {
        const words = new Int32Array(segment.buffer, 4096, 1);
        for (let i = 0; i < n; i++) Atomics.add(words, 0, 1);
      }, 5_000_000),
    },
  ];
  console.log(`memalloc FFI costs, ${runtimeVersion()}`);
  printTable(
    rows.map((r) => ({ operation: r.operation, "ns/op": r.ns, "ops/s": Math.round(1e9 / r.ns) })),
  );
  console.log(`wrote ${writeResults("ffi", { rows })}`);
} finally {
  Segment.unlink(name);
  Segment.unlink(mutexName);
}
