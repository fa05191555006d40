// A child process for fuzz_test.ts: `<store> <seed> <cases> [first case]`. Damages a populated segment in
// one of its structures, then runs the public API over it; prints one JSON line of outcomes.
//
// Each case starts from the same populated segment (a snapshot), XORs 1 to 4 random bytes of
// one region (segment header, store header, heap control block, directory, entry headers,
// block headers, or anywhere), then: `Memalloc.open`, 24 random operations (read, info, write,
// delete, clean, stats, verify), and finally a simulated crash (the seqlock left odd) and one
// write, after which `verify()` must be clean: a repair brings any damage back to a
// consistent store. An operation may return or throw a `MemallocError` with a memalloc code;
// anything else is a failure. A read may return `undefined` (an entry lost to the damage or
// evicted) or a value some write gave that name, never anything else, except for the entries
// whose own bytes were damaged: damage must not spread to other entries.
import { isDeepStrictEqual } from "node:util";
import { MemallocError } from "../errors.ts";
import { Segment } from "../ffi/segment.ts";
import { Memalloc } from "../memalloc.ts";
import {
  E_VERSION_LOW,
  ENTRY_HEADER_BYTES,
  ENTRY_TAG,
  HEAP_OFFSET,
  SEG_LOCK_GENERATION,
  SEGMENT_HEADER_BYTES,
  ST_BUCKET_COUNT,
  ST_BUCKETS,
  ST_SEQ,
} from "../allocator/layout.ts";
import { Tlsf } from "../allocator/tlsf.ts";
import { mulberry32 as rng } from "./_random.ts";

const argv = (globalThis as { process?: { argv: string[] } }).process!.argv.slice(2);
const [storeName, seedText, casesText, firstText = "0"] = argv as [string, string, string];
const SIZE = 128 << 10;
const DEBUG = (globalThis as { process?: { env: Record<string, string> } }).process!.env
  .FUZZ_DEBUG === "1";
const OPS_PER_CASE = 24;
const ALLOWED_CODES = new Set([
  "ERR_MEMALLOC_FORMAT",
  "ERR_MEMALLOC_VERSION",
  "ERR_MEMALLOC_CORRUPT",
]);

function valueFor(random: () => number, i: number): unknown {
  const size = Math.floor(random() ** 3 * 3000);
  switch (i % 3) {
    case 0:
      return "v".repeat(size) + i;
    case 1:
      return new Uint8Array(size).fill(i & 0xff);
    default:
      return { i, tags: ["a", "b", i], nested: { at: new Date(i * 1000), text: "x".repeat(size) } };
  }
}

// The populated segment every case starts from: entries of every kind and size, some deleted
// (so the heap has free blocks between used ones), the directory grown once.
Memalloc.unlink(storeName);
const populate = rng(Number(seedText));
/** Each name's value in the snapshot. */
const initial = new Map<string, unknown>();
{
  using store = Memalloc.open(storeName, { maxMemory: SIZE });
  for (let i = 0; i < 400; i++) {
    const value = valueFor(populate, i);
    store.write(`name-${i}`, value);
    initial.set(`name-${i}`, value);
  }
  for (let i = 0; i < 400; i += 3) {
    store.delete(`name-${i}`);
    initial.delete(`name-${i}`);
  }
}
const raw = Segment.open(storeName, { size: SIZE });
const bytes = new Uint8Array(raw.buffer);
const u32 = new Uint32Array(raw.buffer);
const snapshot = bytes.slice();
const snapshotGeneration = u32[SEG_LOCK_GENERATION >>> 2];

// The regions to damage, from the snapshot's own structure.
type Region = { kind: string; start: number; end: number };
const regions: Region[][] = [];
const add = (kind: string, spans: Array<[number, number]>) =>
  regions.push(spans.map(([start, end]) => ({ kind, start, end })));
add("segment header", [[0, SEGMENT_HEADER_BYTES]]);
add("store header", [[SEGMENT_HEADER_BYTES, HEAP_OFFSET]]);
const heap = Tlsf.attach(snapshot.buffer, HEAP_OFFSET, SIZE - HEAP_OFFSET);
const blocks = [...heap.blocks()];
add("heap control block", [[HEAP_OFFSET, blocks[0]!.offset - 4]]);
const buckets = u32[ST_BUCKETS >>> 2]!;
add("directory", [[buckets, buckets + u32[ST_BUCKET_COUNT >>> 2]! * 4]]);
const entries = blocks.filter((b) => !b.free && (u32[b.offset >>> 2]! & 0xff) === ENTRY_TAG);
const decoder = new TextDecoder();
/** The entry name whose block (header included) holds byte `at`, if any. */
function entryAt(at: number): string | undefined {
  const entry = entries.find((b) => at >= b.offset - 4 && at < b.offset + b.size);
  if (entry === undefined) return undefined;
  const length = snapshot[entry.offset + 3]!; // the tag's top byte
  const start = entry.offset + ENTRY_HEADER_BYTES;
  return decoder.decode(snapshot.subarray(start, start + length));
}
add("entry header", entries.map((b) => [b.offset, b.offset + ENTRY_HEADER_BYTES]));
add("entry version, times and name", entries.map((b) => [b.offset + E_VERSION_LOW, b.offset + 60]));
add("block header", blocks.map((b) => [b.offset - 4, b.offset]));
add("anywhere", [[0, SIZE]]);

const outcomes: Record<string, number> = {};
const count = (key: string) => (outcomes[key] = (outcomes[key] ?? 0) + 1);
const failures: string[] = [];
const fail = (text: string) => failures.length < 20 && failures.push(text);
let maxCaseMs = 0;
let operations = 0;
const started = performance.now();

/** Whether `error` is what damage may cause: a MemallocError with a memalloc code. */
function allowed(error: unknown): error is MemallocError {
  return error instanceof MemallocError && ALLOWED_CODES.has(error.code) &&
    error.message.includes(storeName);
}

/** The segment's repair count, or -1 when stats() itself fails. */
function repairs(store: Memalloc): number {
  try {
    return store.stats().repairs;
  } catch {
    return -1;
  }
}

const cases = Number(casesText);
for (let c = Number(firstText); c < Number(firstText) + cases; c++) {
  const random = rng(Number(seedText) * 1_000_003 + c);
  bytes.set(snapshot);
  const family = regions[Math.floor(random() * regions.length)]!;
  const region = family[Math.floor(random() * family.length)]!;
  const flips = 1 + Math.floor(random() * 4);
  /** Names whose own bytes were damaged: their reads may return anything. */
  const damagedNames = new Set<string>();
  for (let f = 0; f < flips; f++) {
    const at = region.start + Math.floor(random() * (region.end - region.start));
    bytes[at]! ^= 1 + Math.floor(random() * 255);
    if (DEBUG) console.error(`flip at ${at}: ${snapshot[at]} -> ${bytes[at]}`);
    const name = entryAt(at);
    if (name !== undefined) damagedNames.add(name);
  }
  /** What a read of each name may return besides `undefined`. */
  const acceptable = new Map<string, unknown[]>();
  for (const [name, value] of initial) acceptable.set(name, [value]);
  const check = (name: string, when: string) => {
    let value: unknown;
    try {
      value = store.read(name);
    } catch (error) {
      // A damaged value may fail to decode; an undamaged one must not.
      if (!allowed(error)) throw error;
      if (!damagedNames.has(name)) fail(`${where}: ${when} read of "${name}" threw ${error}`);
      return;
    }
    if (value === undefined || damagedNames.has(name)) return;
    if ((acceptable.get(name) ?? []).some((v) => isDeepStrictEqual(v, value))) return;
    fail(`${where}: ${when} read of "${name}" returned a value no write gave it`);
  };
  const where = `seed ${seedText} case ${c} (${region.kind})`;
  const caseStart = performance.now();
  const damaged = bytes.slice(0, HEAP_OFFSET);
  let store: Memalloc;
  try {
    // A damaged mutex is found after the lock timeout: keep it short.
    store = Memalloc.open(storeName, { maxMemory: SIZE, lockTimeout: 20 });
  } catch (error) {
    if (!allowed(error)) {
      fail(`${where}: open threw ${String(error)}`);
    } else {
      count(`open refused: ${error.code}`);
      // Refused means untouched.
      if (!bytes.subarray(0, HEAP_OFFSET).every((b, i) => b === damaged[i])) {
        fail(`${where}: open refused the segment (${error.code}) but changed its headers`);
      }
    }
    continue;
  }
  count("opened");
  try {
    // What the damage looks like before anything runs: verify() reports, never throws.
    try {
      const problems = store.verify();
      if (DEBUG) console.error("verify:", problems);
      if (problems.length > 0) count("damage seen by verify");
    } catch (error) {
      fail(`${where}: verify threw ${String((error as Error)?.stack ?? error)}`);
    }
    const repairsBefore = repairs(store);
    for (let op = 0; op < OPS_PER_CASE; op++) {
      const name = `name-${Math.floor(random() * 440)}`;
      const choice = random();
      operations++;
      try {
        if (DEBUG) console.error(`operation ${op}: ${name} ${choice.toFixed(2)}`);
        if (choice < 0.35) check(name, "a");
        else if (choice < 0.45) store.info(name);
        else if (choice < 0.7) {
          const value = valueFor(random, op);
          acceptable.set(name, [...acceptable.get(name) ?? [], value]); // old or new if it fails
          store.write(name, value);
          acceptable.set(name, [value]);
        } else if (choice < 0.82) {
          if (store.delete(name)) acceptable.set(name, []);
        } else if (choice < 0.87) store.clean();
        else if (choice < 0.94) store.stats();
        else {
          const problems = store.verify();
          if (!Array.isArray(problems)) fail(`${where}: verify returned ${String(problems)}`);
        }
        count("operation ok");
      } catch (error) {
        if (allowed(error)) count(`operation error: ${error.code}`);
        else fail(`${where}: operation threw ${String((error as Error)?.stack ?? error)}`);
      }
    }
    if (repairs(store) > repairsBefore) count("repaired by an operation");
    if (u32[SEG_LOCK_GENERATION >>> 2] !== snapshotGeneration) count("damaged mutex renewed");
    // A writer dies mid-mutation: the next write repairs, and the store is consistent after.
    Atomics.add(u32, ST_SEQ >>> 2, 1);
    try {
      store.write("after-repair", "ok");
      const problems = store.verify();
      if (problems.length > 0) fail(`${where}: verify after repair: ${problems.join("; ")}`);
      else if (store.read("after-repair") !== "ok") fail(`${where}: write after repair lost`);
      else count("clean after repair");
      for (let i = 0; i < 440; i++) check(`name-${i}`, "a final");
    } catch (error) {
      fail(`${where}: write after repair threw ${String((error as Error)?.stack ?? error)}`);
    }
  } finally {
    store.close();
  }
  maxCaseMs = Math.max(maxCaseMs, performance.now() - caseStart);
}
raw.close();
Memalloc.unlink(storeName);
console.log(JSON.stringify({
  cases,
  operations,
  outcomes,
  failures,
  maxCaseMs: Math.round(maxCaseMs * 10) / 10,
  totalMs: Math.round(performance.now() - started),
}));
