/**
 * What the store's hot paths cost on this runtime, through a real shared-memory segment:
 * lock-free reads (string, bytes, miss), writes under the lock, and bytes per entry.
 *
 * Usage: deno run -A bench/store_bench.ts | bun bench/store_bench.ts (or `deno task bench store`)
 *
 * @module
 */
import { Memalloc } from "../mod.ts";
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

  console.log(`memalloc store hot paths, ${runtimeVersion()}`);
  printTable(
    results.map((r) => ({ operation: r.operation, "ns/op": r.ns, "ops/s": r.opsPerSecond })),
  );
  console.log(
    `segment bytes per entry (16 B name, 100 B value): ${perEntry.toFixed(1)} (${
      (perEntry - 116).toFixed(1)
    } overhead)`,
  );
  console.log(`wrote ${writeResults("store", { rows: results, bytesPerEntry: perEntry })}`);
} finally {
  store.close();
  Memalloc.unlink(name);
}
