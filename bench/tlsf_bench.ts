/**
 * Benchmark of the TLSF allocator, the same scenarios on Deno and Bun:
 *
 * - `small`: alloc+free pairs of 16–256 B, 1,000 blocks live (a ring: free the oldest, allocate
 *   a new one).
 * - `mixed`: the same with log-uniform sizes 16 B–64 KiB.
 * - `steady`: the cache-like steady state. Log-uniform sizes 32 B–64 KiB are allocated until 80%
 *   of the region is payload, then 1,000,000 operations each free a random block and allocate
 *   until the payload is back at 80%. A failed allocation evicts one more random block and
 *   retries the same size; each failed attempt counts as "failed with room" when the heap's
 *   total free payload was at least the size asked for. Also run at 90% and 95% to show where
 *   failures begin.
 *
 * Run `deno run -A bench/tlsf_bench.ts [--json]` or `bun bench/tlsf_bench.ts [--json]`. Prints a
 * table (and the JSON with `--json`), and writes the JSON to `bench/results/tlsf-<runtime>.json`.
 * Timings are never asserted.
 *
 * @module
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { runtime } from "../ffi/runtime.ts";
import { NO_ROOM, Tlsf } from "../allocator/tlsf.ts";
import { mulberry32 } from "../tests/_random.ts";

const REGION = 64 << 20;
const RING = 1000;
const PAIRS = 2_000_000;
const STEADY_OPS = 1_000_000;
/** Extra steady-state runs at higher fill levels, to show where allocations start to fail. */
const EXTRA_FILLS = [0.9, 0.95];
const EXTRA_OPS = 200_000;

/** 65,536 sizes, uniform in [min, max] or log-uniform. */
function sizeTable(seed: number, min: number, max: number, logUniform: boolean): Uint32Array {
  const random = mulberry32(seed);
  const sizes = new Uint32Array(1 << 16);
  for (let i = 0; i < sizes.length; i++) {
    sizes[i] = logUniform
      ? Math.min(max, Math.floor(min * Math.pow(max / min, random())))
      : min + Math.floor(random() * (max - min + 1));
  }
  return sizes;
}

interface PairResult {
  pairs: number;
  ms: number;
  pairsPerSecond: number;
  nsPerPair: number;
}

/** Ring of RING live blocks: each pair frees the oldest block and allocates a new one. */
function pairs(sizes: Uint32Array, count: number): PairResult {
  const heap = Tlsf.format(new ArrayBuffer(REGION), 0, REGION);
  const ring = new Float64Array(RING);
  for (let i = 0; i < RING; i++) ring[i] = heap.alloc(sizes[i]!);
  const mask = sizes.length - 1;
  const start = performance.now();
  let slot = 0;
  for (let i = 0; i < count; i++) {
    heap.free(ring[slot]!);
    const at = heap.alloc(sizes[(i + RING) & mask]!);
    if (at === NO_ROOM) throw new Error(`Unexpected NO_ROOM at pair ${i}`);
    ring[slot] = at;
    slot = slot + 1 === RING ? 0 : slot + 1;
  }
  const ms = performance.now() - start;
  return { pairs: count, ms, pairsPerSecond: count / ms * 1000, nsPerPair: ms * 1e6 / count };
}

interface SteadyResult {
  fill: number;
  ops: number;
  allocs: number;
  ms: number;
  nsPerOp: number;
  liveBlocks: number;
  payloadShare: number;
  minPayloadShare: number;
  usedShare: number;
  failedWithRoom: number;
  failedWithRoomShare: number;
  failedNoRoom: number;
  fragmentation: number;
  /** Payload share reached by allocating from the final state, without freeing, until NO_ROOM. */
  payloadShareAtFirstFailure: number;
  verified: boolean;
}

function steady(ops: number, fill: number): SteadyResult {
  const heap = Tlsf.format(new ArrayBuffer(REGION), 0, REGION);
  const sizes = sizeTable(3, 32, 65536, true);
  const mask = sizes.length - 1;
  const random = mulberry32(4);
  const target = REGION * fill;
  const live: number[] = [];
  const liveSize: number[] = [];
  let payload = 0;
  let next = 0;
  let allocs = 0;
  let failedWithRoom = 0;
  let failedNoRoom = 0;

  const evict = (): void => {
    const i = Math.floor(random() * live.length);
    heap.free(live[i]!);
    payload -= liveSize[i]!;
    live[i] = live[live.length - 1]!;
    liveSize[i] = liveSize[liveSize.length - 1]!;
    live.pop();
    liveSize.pop();
  };
  const refill = (): void => {
    while (payload < target) {
      const size = sizes[next++ & mask]!;
      for (;;) {
        allocs++;
        const at = heap.alloc(size);
        if (at !== NO_ROOM) {
          live.push(at);
          liveSize.push(size);
          payload += size;
          break;
        }
        // Like a cache: evict a random block and try the same size again.
        if (heap.stats().free >= size) failedWithRoom++;
        else failedNoRoom++;
        evict();
      }
    }
  };

  refill();
  allocs = failedWithRoom = failedNoRoom = 0;
  let shareSum = 0;
  let minShare = 1;
  const start = performance.now();
  for (let i = 0; i < ops; i++) {
    evict();
    refill();
    const share = payload / REGION;
    shareSum += share;
    if (share < minShare) minShare = share;
  }
  const ms = performance.now() - start;
  const stats = heap.stats();
  const verified = heap.verify().length === 0;
  let top = payload;
  for (;;) {
    const size = sizes[next++ & mask]!;
    if (heap.alloc(size) === NO_ROOM) break;
    top += size;
  }
  return {
    fill,
    ops,
    allocs,
    ms,
    nsPerOp: ms * 1e6 / ops,
    liveBlocks: live.length,
    payloadShare: shareSum / ops,
    minPayloadShare: minShare,
    usedShare: stats.used / REGION,
    failedWithRoom,
    failedWithRoomShare: allocs > 0 ? failedWithRoom / allocs : 0,
    failedNoRoom,
    fragmentation: stats.fragmentation,
    payloadShareAtFirstFailure: top / REGION,
    verified,
  };
}

const userAgent = globalThis.navigator?.userAgent ?? runtime;
const small = sizeTable(1, 16, 256, false);
const mixed = sizeTable(2, 16, 65536, true);

// Warm up: let the JIT compile alloc, free and the loops.
pairs(small, 200_000);
pairs(mixed, 200_000);
steady(50_000, 0.8);

const results = {
  runtime,
  userAgent,
  date: new Date().toISOString(),
  regionBytes: REGION,
  liveBlocks: RING,
  small: pairs(small, PAIRS),
  mixed: pairs(mixed, PAIRS),
  steady: steady(STEADY_OPS, 0.8),
  steadyHigher: EXTRA_FILLS.map((fill) => steady(EXTRA_OPS, fill)),
};

const pct = (x: number): string => (x * 100).toFixed(2) + "%";
console.log(`TLSF allocator, ${userAgent}, region ${REGION >> 20} MiB`);
console.table({
  "small 16-256 B": {
    "pairs/s": Math.round(results.small.pairsPerSecond),
    "ns/pair": Number(results.small.nsPerPair.toFixed(1)),
  },
  "mixed 16 B-64 KiB": {
    "pairs/s": Math.round(results.mixed.pairsPerSecond),
    "ns/pair": Number(results.mixed.nsPerPair.toFixed(1)),
  },
});
const steadyRow = (s: SteadyResult): Record<string, string | number> => ({
  "ops": s.ops,
  "ns/op": Number(s.nsPerOp.toFixed(1)),
  "payload share": pct(s.payloadShare),
  "failed with room": `${s.failedWithRoom}/${s.allocs} (${pct(s.failedWithRoomShare)})`,
  "fragmentation": pct(s.fragmentation),
  "full at": pct(s.payloadShareAtFirstFailure),
  "verify": s.verified ? "ok" : "FAILED",
});
console.table(
  Object.fromEntries(
    [results.steady, ...results.steadyHigher].map((s) => [
      `steady 32 B-64 KiB at ${s.fill * 100}%`,
      steadyRow(s),
    ]),
  ),
);
console.log(
  "payload share: requested bytes / region, averaged over the run; failed with room: NO_ROOM " +
    "although the free payload was >= the request; full at: payload share when an allocation " +
    "first fails with no frees",
);

const text = JSON.stringify(results, null, 2);
const args = (globalThis as { Deno?: { args: string[] } }).Deno?.args ??
  (globalThis as { process?: { argv: string[] } }).process?.argv.slice(2) ?? [];
if (args.includes("--json")) console.log(text);
const dir = new URL("./results/", import.meta.url);
mkdirSync(dir, { recursive: true });
writeFileSync(new URL(`tlsf-${runtime}.json`, dir), text + "\n");
