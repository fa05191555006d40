/**
 * What the store's hot paths cost on this runtime, through a real shared-memory segment:
 * lock-free reads (string, bytes, miss), writes under the lock, bytes per entry, and the time
 * the next writer takes to repair the segment after a process died in the middle of a write.
 *
 * Usage: deno run -A bench/store_bench.ts | bun bench/store_bench.ts (or `deno task bench store`)
 *
 * @module
 */
import { Memalloc } from "../mod.ts";
import { ST_SEQ } from "../allocator/layout.ts";
import { Segment } from "../ffi/segment.ts";
import { measure, printTable, runtimeVersion, writeResults } from "./_report.ts";

const name = `bench-store-${crypto.randomUUID()}`;
const store = Memalloc.open(name, { maxMemory: 64 << 20 });
try {
  const n = 10_000;
  const names = Array.from({ length: n }, (_, i) => `key:${String(i).padStart(12, "0")}`);
  const text = "v".repeat(100);
  const bytes = new Uint8Array(100).fill(7);
  const object = { id: 1, name: "Ada Lovelace", tags: ["a", "b", "c"], score: 0.5, ok: true };
  for (const key of names) store.write(key, text);
  for (let i = 0; i < 100; i++) store.write(`bytes:${i}`, bytes);
  store.write("object", object);

  const rows = [
    ["read hit, 100-byte string", 1_000_000, (i: number) => store.read(names[i % n]!)],
    ["read hit, 100-byte Uint8Array", 1_000_000, (i: number) => store.read(`bytes:${i % 100}`)],
    ["read hit, small object (CBOR)", 500_000, () => store.read("object")],
    ["read miss", 1_000_000, (i: number) => store.read(`missing:${i & 1023}`)],
    ["overwrite, 100-byte string", 200_000, (i: number) => store.write(names[i % n]!, text)],
    ["overwrite, 100-byte Uint8Array", 200_000, (i: number) => store.write(names[i % n]!, bytes)],
    ["write + delete, new name", 100_000, (i: number) => {
      store.write(`fresh:${i}`, text);
      store.delete(`fresh:${i}`);
    }],
  ] as const;
  const results = rows.map(([operation, iterations, body]) => {
    const ns = measure((count) => {
      for (let i = 0; i < count; i++) body(i);
    }, iterations);
    return { operation, ns, opsPerSecond: Math.round(1e9 / ns) };
  });

  // Bytes of segment per entry: 100,000 entries, 16-byte names, 100-byte values.
  store.purge();
  const before = store.stats().bytesUsed;
  for (let i = 0; i < 100_000; i++) store.write(`k${String(i).padStart(15, "0")}`, bytes);
  const perEntry = (store.stats().bytesUsed - before) / 100_000;

  // Crash repair: a writer dies holding the seqlock odd; the next write repairs the segment
  // (heap walk, entry checks, directory and write order rebuilt) before its own work.
  using raw = Segment.open(name, { size: 64 << 20 });
  const seq = new Uint32Array(raw.buffer, ST_SEQ, 1);
  const repairs: Array<{ entries: number; ms: number }> = [];
  for (const entries of [100_000, 300_000]) {
    for (let i = store.stats().entries; i < entries; i++) {
      store.write(`k${String(i).padStart(15, "0")}`, bytes);
    }
    const times: number[] = [];
    for (let round = 0; round < 5; round++) {
      Atomics.add(seq, 0, 1); // as a writer killed mid-mutation leaves it
      const start = performance.now();
      store.write("after-crash", text);
      times.push(performance.now() - start);
    }
    times.sort((a, b) => a - b);
    repairs.push({ entries: store.stats().entries, ms: times[2]! });
  }

  console.log(`memalloc store hot paths, ${runtimeVersion()}`);
  printTable(
    results.map((r) => ({ operation: r.operation, "ns/op": r.ns, "ops/s": r.opsPerSecond })),
  );
  console.log(
    `segment bytes per entry (16 B name, 100 B value): ${perEntry.toFixed(1)} (${
      (perEntry - 116).toFixed(1)
    } overhead)`,
  );
  for (const { entries, ms } of repairs) {
    console.log(
      `crash repair by the next writer, ${entries.toLocaleString("en-US")} entries in 64 MiB: ${
        ms.toFixed(1)
      } ms (median of 5)`,
    );
  }
  console.log(
    `wrote ${writeResults("store", { rows: results, bytesPerEntry: perEntry, repairs })}`,
  );
} finally {
  store.close();
  Memalloc.unlink(name);
}
