/**
 * memalloc against the tools a user would reach for instead: an in-process `Map` (the ceiling),
 * lmdb-js, SQLite (the runtime's built-in binding) and Redis over loopback TCP. The same
 * scenarios run for every peer that supports them, on the runtime this script runs on.
 *
 * Scenarios (ops/s, per process):
 * - read hit of a 100-byte value, as bytes and as a string; read miss;
 * - read of a structured value (an object of about 1 KiB as CBOR). The peers store the bytes of
 *   cbor-x's `encode` and the benchmark decodes them with cbor-x's `decode` on every read;
 *   memalloc is given the object itself (it encodes CBOR inside). An extra row gives memalloc the
 *   same cbor-x bytes as the peers;
 * - write of 100 B and of 4 KiB under new names; overwrite of an existing name; delete;
 * - increment of 10,000 counters in turn, with each peer's own atomic counter operation;
 * - mixed: 90% reads and 10% overwrites of 100-byte values, over 10,000 names at random;
 * - steady state under eviction (memalloc only): a 1 MiB store written with 15× its size of
 *   100-byte values, every write an insert that evicts; writes/s and evictions/s (`stats()`);
 * - two processes (memalloc, lmdb-js, SQLite): total reads/s and writes/s of two processes of
 *   this runtime at once, started together at a barrier, against one process alone (best of 3
 *   alternating runs; 1 with `--quick`). A CPU-bound control that shares nothing shows how far
 *   two processes can scale on this machine at all;
 * - a reader with a writer process on other names (memalloc, lmdb-js, SQLite): the reads/s of
 *   one process reading 1,024 names alone, and while a second process of this runtime overwrites
 *   1,024 other names of the same store (100-byte values), started together at a barrier; the
 *   ratio with ÷ alone shows how far writes elsewhere in the store disturb lock-free reads; the
 *   same ratio per second of the reader's own CPU time leaves out what a busy machine takes. Best
 *   of 3 alternating runs (1 with `--quick`), with the same CPU-bound control;
 * - memory: bytes per entry for N entries with 16-byte names and 100-byte values (memalloc:
 *   `stats().bytesUsed` delta; peers: `memoryBytes()` delta where measurable).
 *
 * Redis is asynchronous: the headline figure is one awaited request at a time (what a cache
 * lookup inside request handling does); the columns marked "pipelined" keep 100 requests in
 * flight on the connection.
 *
 * Measurement: every case gets its own freshly compiled loop (so that no peer pays for call
 * sites made polymorphic by the others), a warm-up that also sizes the rounds, then at least 5
 * timed rounds (3 with `--quick`); the figure is the median round. Untimed work (filling,
 * deleting what a round wrote) happens between rounds. Every peer gets the same value bytes.
 * Timings are reported, never asserted; the run fails only when a peer returns wrong data.
 *
 * Usage:
 *   deno run -A bench/compare_bench.ts [--quick] [--json]
 *   bun bench/compare_bench.ts [--quick] [--json]
 *   deno task bench compare -- --quick          (both runtimes, one after the other)
 *
 * `--quick` (CI) takes well under a minute per runtime; the full run a few minutes. Results go
 * to `bench/results/compare-<runtime>.json`; `--json` also prints them.
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { cpus, loadavg, release, totalmem } from "node:os";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { decode } from "cbor-x";
import { runtime } from "../ffi/runtime.ts";
import { printTable, runtimeVersion, writeResults } from "./_report.ts";
import {
  type ChildRole,
  epochNow,
  names,
  READER_NAMES,
  SHARED_NAMES,
  type SharedPeerKind,
  STRING_100,
  STRUCTURED_BYTES,
  structuredValue,
  VALUE_100,
  VALUE_4K,
  WRITER_NAMES,
} from "./_compare_data.ts";
import {
  type AsyncPeer,
  openLmdbPeer,
  openPeers,
  openSqlitePeer,
  type Peer,
  type PeerSet,
} from "./peers/index.ts";
import { type MemallocPeer, openMemallocPeer, removeStaleBenchStores } from "./peers/memalloc.ts";
import { Memalloc } from "../mod.ts";
import { errorMessage } from "./peers/types.ts";
import { mulberry32 } from "../tests/_random.ts";
import { NODE_FLAGS, onLines } from "../tests/_spawn.ts";

// ---------------------------------------------------------------------------------------------
// Options

const args = process.argv.slice(2);
for (const arg of args) {
  if (arg !== "--quick" && arg !== "--json") {
    console.error(`Unknown argument "${arg}": the options are --quick and --json`);
    process.exit(2);
  }
}
const QUICK = args.includes("--quick");
const PRINT_JSON = args.includes("--json");

/** How long and how often each case runs. */
interface Settings {
  /** Untimed warm-up of each case, which also sizes its rounds. */
  warmupMs: number;
  /** Target length of one timed round. */
  roundMs: number;
  /** Timed rounds at least; more (up to 4×) when rounds are shorter than `roundMs`. */
  rounds: number;
  /** Entries of the memory scenario. */
  memoryEntries: number;
  /**
   * Length of each phase (reads, then writes) of the two-process scenario, and of the timed run
   * of the scenario with a writer on other names.
   */
  twoProcessMs: number;
  /**
   * Runs of one process, then two, taken in turn (in both multi-process scenarios); the best of
   * each is reported.
   */
  twoProcessRepeats: number;
  /** Requests in flight together in the pipelined Redis figures. */
  pipelineDepth: number;
}

const SETTINGS: Settings = QUICK
  ? {
    warmupMs: 40,
    roundMs: 50,
    rounds: 3,
    memoryEntries: 20_000,
    twoProcessMs: 400,
    twoProcessRepeats: 1,
    pipelineDepth: 100,
  }
  : {
    warmupMs: 250,
    roundMs: 250,
    rounds: 5,
    memoryEntries: 100_000,
    twoProcessMs: 1_500,
    twoProcessRepeats: 3,
    pipelineDepth: 100,
  };

// ---------------------------------------------------------------------------------------------
// What is measured: a target is one column of the tables

type Mode = "sync" | "awaited" | "pipelined";

interface Target {
  /** Column label. */
  readonly label: string;
  readonly peer: Peer | AsyncPeer;
  readonly mode: Mode;
}

/** One case: a body timed over rounds of `n` operations. */
interface Case {
  /**
   * A JavaScript expression evaluated once per operation: `i` is the operation's index in its
   * round, and the keys of `context` are in scope. Async targets await its value.
   */
  body: string;
  context: Record<string, unknown>;
  /** Most operations a round may do (the names available). Default: no limit. */
  cap?: number;
  /** Untimed, before each round of `n` operations. */
  before?: (n: number) => unknown;
  /** Untimed, after each round of `n` operations. */
  after?: (n: number) => unknown;
  /**
   * How many of a round's `n` operations must give a value (anything but undefined and false):
   * a peer that returns wrong data fails the run instead of looking fast.
   */
  expected: (n: number) => number;
}

interface Scenario {
  readonly id: string;
  readonly label: string;
  /** Whether it runs on a target; default all targets. */
  applies?: (target: Target) => boolean;
  /** Untimed: fills the peer and returns the case, and what removes the data again. */
  prepare(target: Target): Promise<{ run: Case; cleanup: () => Promise<void> }>;
}

interface Measurement {
  opsPerSecond: number;
  nsPerOp: number;
  rounds: number;
  opsPerRound: number;
}

/** Counts the values a loop found: anything but undefined and false. */
const COUNT = "if (r !== undefined && r !== false) found++;";

/**
 * Compiles the timed loop of a case, fresh for each case so that its call sites see one peer
 * only, the way a program that uses one store sees it.
 */
function compile(run: Case, mode: Mode, depth: number): (n: number) => number | Promise<number> {
  const keys = Object.keys(run.context);
  const source = mode === "sync"
    ? `return function loop(n) {
        let found = 0;
        for (let i = 0; i < n; i++) { const r = ${run.body}; ${COUNT} }
        return found;
      };`
    : mode === "awaited"
    ? `return async function loop(n) {
        let found = 0;
        for (let i = 0; i < n; i++) { const r = await (${run.body}); ${COUNT} }
        return found;
      };`
    : `return async function loop(n) {
        let found = 0;
        const batch = [];
        for (let i = 0; i < n;) {
          batch.length = 0;
          for (let k = 0; k < ${depth} && i < n; k++, i++) batch.push(${run.body});
          for (const r of await Promise.all(batch)) { ${COUNT} }
        }
        return found;
      };`;
  const factory = new Function(...keys, `"use strict";\n${source}`) as (
    ...values: unknown[]
  ) => (n: number) => number | Promise<number>;
  return factory(...keys.map((key) => run.context[key]));
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Warms a case up, sizes its rounds from the warm-up's rate, and times the rounds. */
async function measure(target: Target, run: Case): Promise<Measurement> {
  const loop = compile(run, target.mode, SETTINGS.pipelineDepth);
  const cap = run.cap ?? Number.POSITIVE_INFINITY;
  const round = async (n: number): Promise<number> => {
    await run.before?.(n);
    const start = performance.now();
    const found = target.mode === "sync" ? loop(n) as number : await loop(n);
    const ms = performance.now() - start;
    await run.after?.(n);
    const want = run.expected(n);
    if (found !== want) {
      throw new Error(`${n} operations gave ${found} values where ${want} were expected`);
    }
    return Math.max(ms, 1e-3);
  };
  let n = Math.min(cap, 64);
  let rate = 0;
  const warmEnd = performance.now() + SETTINGS.warmupMs;
  do {
    const ms = await round(n);
    rate = (n / ms) * 1000;
    if (ms < SETTINGS.roundMs / 4 && n < cap) n = Math.min(cap, n * 2);
  } while (performance.now() < warmEnd);
  n = Math.max(16, Math.min(cap, Math.round((rate * SETTINGS.roundMs) / 1000)));
  const samples: number[] = [];
  let timed = 0;
  while (
    samples.length < SETTINGS.rounds ||
    (timed < SETTINGS.rounds * SETTINGS.roundMs && samples.length < SETTINGS.rounds * 4)
  ) {
    const ms = await round(n);
    timed += ms;
    samples.push((n / ms) * 1000);
  }
  const opsPerSecond = median(samples);
  return { opsPerSecond, nsPerOp: 1e9 / opsPerSecond, rounds: samples.length, opsPerRound: n };
}

/** Calls `f` for `keys[from..to)`: in a loop for a sync peer, 256 requests at a time for Redis. */
async function each(
  target: Target,
  keys: readonly string[],
  f: (key: string) => unknown,
  from = 0,
  to = keys.length,
): Promise<void> {
  if (target.mode === "sync") {
    for (let i = from; i < to; i++) f(keys[i]!);
    return;
  }
  for (let i = from; i < to; i += 256) {
    await Promise.all(keys.slice(i, Math.min(to, i + 256)).map(f));
  }
}

const isMemalloc = (target: Target): target is Target & { peer: MemallocPeer } =>
  target.peer.name === "memalloc";

/** The memalloc peer of a target that `isMemalloc` admitted. */
function memallocPeer(target: Target): MemallocPeer {
  if (!isMemalloc(target)) throw new Error(`${target.label} is not memalloc`);
  return target.peer;
}

/**
 * memalloc only: overwrites of the 1 KiB object, encoded by memalloc (records, the default, or
 * JSON text through a handle opened with `objects: "json"`): what a write of an object costs.
 */
function objectOverwrite(id: string, label: string, objects: "records" | "json"): Scenario {
  return {
    id,
    label,
    applies: isMemalloc,
    async prepare(target) {
      const keys = names(objects === "json" ? "J:" : "R:", READ_NAMES);
      const peer = memallocPeer(target);
      const store = Memalloc.open(peer.store.name, { objects });
      const object = structuredValue();
      await each(target, keys, (key) => store.write(key, object));
      checkRead(target, keys[0]!, store.read(keys[0]!), object);
      return {
        run: {
          body: `store.write(keys[i & ${READ_NAMES - 1}], object)`,
          context: { store, keys, object },
          expected: (n) => n, // write() returns true
        },
        cleanup: async () => {
          await each(target, keys, (key) => store.delete(key));
          store.close();
        },
      };
    },
  };
}

/** Throws unless `actual` is what a read of `what` should give. */
function checkRead(target: Target, what: string, actual: unknown, expected: unknown): void {
  const same = actual instanceof Uint8Array && expected instanceof Uint8Array
    ? actual.length === expected.length && actual.every((x, i) => x === expected[i])
    : JSON.stringify(actual) === JSON.stringify(expected);
  if (!same) throw new Error(`${target.label} returned a wrong value for ${what}`);
}

// ---------------------------------------------------------------------------------------------
// The scenarios of the main table

const READ_NAMES = 1024;
const WRITE_100_NAMES = 100_000;
const WRITE_4K_NAMES = 20_000;
const DELETE_NAMES = 100_000;
/** Counters of the increment scenario (a rate limiter's clients). */
const INCREMENT_NAMES = 10_000;
const MIXED_NAMES = 10_000;
const MIXED_PLAN = 65_536;

/** A read scenario over `READ_NAMES` names filled with one value. */
function readScenario(
  id: string,
  label: string,
  prefix: string,
  kind: "bytes" | "string",
): Scenario {
  const keys = names(prefix, READ_NAMES);
  const value = kind === "bytes" ? VALUE_100 : STRING_100;
  return {
    id,
    label,
    async prepare(target) {
      const peer = target.peer;
      await each(
        target,
        keys,
        (key) => kind === "bytes" ? peer.setBytes(key, VALUE_100) : peer.setString(key, STRING_100),
      );
      const first = kind === "bytes"
        ? await peer.getBytes(keys[0]!)
        : await peer.getString(keys[0]!);
      checkRead(target, keys[0]!, first, value);
      const read = kind === "bytes" ? "getBytes" : "getString";
      return {
        run: {
          body: `peer.${read}(keys[i & ${READ_NAMES - 1}])`,
          context: { peer, keys },
          expected: (n) => n,
        },
        cleanup: () => each(target, keys, (key) => peer.delete(key)),
      };
    },
  };
}

const SCENARIOS: Scenario[] = [
  readScenario("read-bytes", "read hit, 100 B as bytes", "r:", "bytes"),
  readScenario("read-string", "read hit, 100 B as string", "s:", "string"),
  {
    // Beside "read hit, 100 B as string": the same read of entries that expire (in an hour),
    // with each peer's own expiry: memalloc checks the clock on every read.
    id: "read-string-ttl",
    label: "read hit, 100 B as string, with a TTL ⁶",
    applies: (target) => typeof target.peer.setStringTtl === "function",
    async prepare(target) {
      const keys = names("t:", READ_NAMES);
      const peer = target.peer;
      await each(target, keys, (key) => peer.setStringTtl!(key, STRING_100, 3_600_000));
      checkRead(target, keys[0]!, await peer.getStringTtl!(keys[0]!), STRING_100);
      return {
        run: {
          body: `peer.getStringTtl(keys[i & ${READ_NAMES - 1}])`,
          context: { peer, keys },
          expected: (n) => n,
        },
        cleanup: () => each(target, keys, (key) => (peer.deleteTtl ?? peer.delete)(key)),
      };
    },
  },
  {
    id: "overwrite-ttl",
    label: "overwrite 100 B with a TTL ⁶",
    applies: (target) => typeof target.peer.setStringTtl === "function",
    async prepare(target) {
      const keys = names("T:", READ_NAMES);
      const peer = target.peer;
      await each(target, keys, (key) => peer.setStringTtl!(key, STRING_100, 3_600_000));
      return {
        run: {
          body: `peer.setStringTtl(keys[i & ${READ_NAMES - 1}], value, 3600000)`,
          context: { peer, keys, value: STRING_100 },
          expected: () => 0,
        },
        cleanup: () => each(target, keys, (key) => (peer.deleteTtl ?? peer.delete)(key)),
      };
    },
  },
  {
    // Put-if-absent of new names, every one stored: what a lock or a first-writer-wins cache
    // fill does.
    id: "add",
    label: "add 100 B, new name ⁸",
    applies: (target) => typeof target.peer.add === "function",
    prepare(target) {
      const keys = names("a:", WRITE_100_NAMES);
      const peer = target.peer;
      return Promise.resolve({
        run: {
          body: "peer.add(keys[i], value)",
          context: { peer, keys, value: STRING_100 },
          cap: WRITE_100_NAMES,
          after: (n) => each(target, keys, (key) => peer.delete(key), 0, n),
          expected: (n) => n, // every add stores
        },
        cleanup: () => Promise.resolve(),
      });
    },
  },
  {
    // The same names again, each already there: every add is refused.
    id: "add-taken",
    label: "add, name taken ⁸",
    applies: (target) => typeof target.peer.add === "function",
    async prepare(target) {
      const keys = names("A:", READ_NAMES);
      const peer = target.peer;
      await each(target, keys, (key) => peer.add!(key, STRING_100));
      return {
        run: {
          body: `peer.add(keys[i & ${READ_NAMES - 1}], value)`,
          context: { peer, keys, value: STRING_100 },
          expected: () => 0, // every add is refused
        },
        cleanup: () => each(target, keys, (key) => peer.delete(key)),
      };
    },
  },
  {
    id: "read-miss",
    label: "read miss",
    async prepare(target) {
      const keys = names("x:", READ_NAMES);
      const peer = target.peer;
      if ((await peer.getBytes(keys[0]!)) !== undefined) {
        throw new Error(`${target.label} has a value for ${keys[0]} that nobody wrote`);
      }
      return {
        run: {
          body: `peer.getBytes(keys[i & ${READ_NAMES - 1}])`,
          context: { peer, keys },
          expected: () => 0,
        },
        cleanup: () => Promise.resolve(),
      };
    },
  },
  {
    id: "read-object",
    label: "read 1 KiB object ¹",
    async prepare(target) {
      const keys = names("o:", READ_NAMES);
      const peer = target.peer;
      const object = structuredValue();
      if (isMemalloc(target)) {
        const store = target.peer;
        await each(target, keys, (key) => store.setValue(key, structuredValue()));
        checkRead(target, keys[0]!, store.getValue(keys[0]!), object);
        return {
          run: {
            body: `peer.getValue(keys[i & ${READ_NAMES - 1}])`,
            context: { peer, keys },
            expected: (n) => n,
          },
          cleanup: () => each(target, keys, (key) => peer.delete(key)),
        };
      }
      await each(target, keys, (key) => peer.setBytes(key, STRUCTURED_BYTES));
      const bytes = await peer.getBytes(keys[0]!);
      checkRead(target, keys[0]!, bytes && decode(bytes), object);
      return {
        run: {
          body: target.mode === "sync"
            ? `decode(peer.getBytes(keys[i & ${READ_NAMES - 1}]))`
            : `peer.getBytes(keys[i & ${READ_NAMES - 1}]).then(decode)`,
          context: { peer, keys, decode },
          expected: (n) => n,
        },
        cleanup: () => each(target, keys, (key) => peer.delete(key)),
      };
    },
  },
  {
    // Beside "read 1 KiB object": the same entries read frozen from the decode cache, unchanged
    // since the first read, so every read checks the version and decodes nothing.
    id: "read-object-frozen",
    label: "read 1 KiB object, frozen, unchanged ⁷",
    applies: isMemalloc,
    async prepare(target) {
      const keys = names("f:", READ_NAMES);
      const store = memallocPeer(target).store;
      await each(target, keys, (key) => store.write(key, structuredValue()));
      checkRead(target, keys[0]!, store.read(keys[0]!, { frozen: true }), structuredValue());
      return {
        run: {
          body: `store.read(keys[i & ${READ_NAMES - 1}], options)`,
          context: { store, keys, options: { frozen: true } },
          expected: (n) => n,
        },
        cleanup: () => each(target, keys, (key) => store.delete(key)),
      };
    },
  },
  {
    id: "read-object-cbor-x",
    label: "read 1 KiB object, as the peers ²",
    applies: isMemalloc,
    async prepare(target) {
      const keys = names("c:", READ_NAMES);
      const peer = target.peer;
      await each(target, keys, (key) => peer.setBytes(key, STRUCTURED_BYTES));
      const bytes = await peer.getBytes(keys[0]!);
      checkRead(target, keys[0]!, bytes && decode(bytes), structuredValue());
      return {
        run: {
          body: `decode(peer.getBytes(keys[i & ${READ_NAMES - 1}]))`,
          context: { peer, keys, decode },
          expected: (n) => n,
        },
        cleanup: () => each(target, keys, (key) => peer.delete(key)),
      };
    },
  },
  objectOverwrite("overwrite-object", "overwrite 1 KiB object ⁹", "records"),
  objectOverwrite("overwrite-object-json", "overwrite 1 KiB object, as JSON text ⁹", "json"),
  writeScenario("write-100", "write 100 B, new name", "w:", VALUE_100, WRITE_100_NAMES),
  writeScenario("write-4k", "write 4 KiB, new name", "W:", VALUE_4K, WRITE_4K_NAMES),
  {
    id: "overwrite",
    label: "overwrite 100 B",
    async prepare(target) {
      const keys = names("u:", READ_NAMES);
      const peer = target.peer;
      await each(target, keys, (key) => peer.setBytes(key, VALUE_100));
      return {
        run: {
          body: `peer.setBytes(keys[i & ${READ_NAMES - 1}], value)`,
          context: { peer, keys, value: VALUE_100 },
          expected: () => 0,
        },
        cleanup: () => each(target, keys, (key) => peer.delete(key)),
      };
    },
  },
  {
    id: "increment",
    label: "increment, 10,000 counters ⁵",
    applies: (target) => typeof target.peer.increment === "function",
    prepare(target) {
      const keys = names("i:", INCREMENT_NAMES);
      const peer = target.peer;
      return Promise.resolve({
        run: {
          body: `peer.increment(keys[i % ${INCREMENT_NAMES}])`,
          context: { peer, keys },
          expected: (n) => n, // every increment returns its new value
        },
        cleanup: () => each(target, keys, (key) => peer.delete(key)),
      });
    },
  },
  {
    // A rate limiter: one counter per client, each in a one-minute window.
    id: "rate-limit",
    label: "rate limiter: increment with a TTL, 10,000 clients ⁶",
    applies: (target) => typeof target.peer.incrementTtl === "function",
    prepare(target) {
      const keys = names("l:", INCREMENT_NAMES);
      const peer = target.peer;
      return Promise.resolve({
        run: {
          body: `peer.incrementTtl(keys[i % ${INCREMENT_NAMES}], 60000)`,
          context: { peer, keys },
          expected: (n) => n,
        },
        cleanup: () => each(target, keys, (key) => (peer.deleteTtl ?? peer.delete)(key)),
      });
    },
  },
  {
    id: "delete",
    label: "delete",
    prepare(target) {
      const keys = names("d:", DELETE_NAMES);
      const peer = target.peer;
      return Promise.resolve({
        run: {
          body: "peer.delete(keys[i])",
          context: { peer, keys },
          cap: DELETE_NAMES,
          before: (n) => each(target, keys, (key) => peer.setBytes(key, VALUE_100), 0, n),
          expected: (n) => n,
        },
        cleanup: () => Promise.resolve(),
      });
    },
  },
  {
    id: "mixed",
    label: "mixed 90% read / 10% write ³",
    async prepare(target) {
      const keys = names("m:", MIXED_NAMES);
      const peer = target.peer;
      await each(target, keys, (key) => peer.setBytes(key, VALUE_100));
      const next = mulberry32(42);
      const planKeys = Array.from(
        { length: MIXED_PLAN },
        () => keys[Math.floor(next() * MIXED_NAMES)]!,
      );
      const planWrites = Uint8Array.from({ length: MIXED_PLAN }, () => next() < 0.1 ? 1 : 0);
      // readsBefore[j]: reads among the first j operations of the plan.
      const readsBefore = new Uint32Array(MIXED_PLAN + 1);
      for (let j = 0; j < MIXED_PLAN; j++) {
        readsBefore[j + 1] = readsBefore[j]! + 1 - planWrites[j]!;
      }
      const mask = MIXED_PLAN - 1;
      return {
        run: {
          body: `writes[i & ${mask}] === 1 ? peer.setBytes(plan[i & ${mask}], value) : ` +
            `peer.getBytes(plan[i & ${mask}])`,
          context: { peer, plan: planKeys, writes: planWrites, value: VALUE_100 },
          expected: (n) =>
            Math.floor(n / MIXED_PLAN) * readsBefore[MIXED_PLAN]! + readsBefore[n % MIXED_PLAN]!,
        },
        cleanup: () => each(target, keys, (key) => peer.delete(key)),
      };
    },
  },
];

/** Writes of `value` under new names; each round's names are deleted again, untimed. */
function writeScenario(
  id: string,
  label: string,
  prefix: string,
  value: Uint8Array,
  count: number,
): Scenario {
  const keys = names(prefix, count);
  return {
    id,
    label,
    prepare(target) {
      const peer = target.peer;
      return Promise.resolve({
        run: {
          body: "peer.setBytes(keys[i], value)",
          context: { peer, keys, value },
          cap: count,
          after: (n) => each(target, keys, (key) => peer.delete(key), 0, n),
          expected: () => 0,
        },
        cleanup: () => Promise.resolve(),
      });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Steady state under eviction (memalloc only)

interface EvictionResult {
  storeBytes: number;
  autoclean: number;
  valueBytes: number;
  names: number;
  writesPerSecond: number;
  evictionsPerSecond: number;
  evictionsPerWrite: number;
  entriesAfter: number;
}

const EVICTION_STORE = 1 << 20;
const EVICTION_NAMES = 131_072;

function eviction(autoclean: number): EvictionResult {
  const peer = openMemallocPeer({ maxMemory: EVICTION_STORE, autoclean });
  try {
    const keys = names("e:", EVICTION_NAMES);
    const state = { next: 0 };
    const target: Target = { label: "memalloc", peer, mode: "sync" };
    const loop = compile(
      {
        body: `peer.setBytes(keys[state.next++ & ${EVICTION_NAMES - 1}], value)`,
        context: { peer, keys, state, value: VALUE_100 },
        expected: () => 0,
      },
      target.mode,
      1,
    ) as (n: number) => number;
    // Warm up until the store is full and evicting, and the loop is compiled.
    const warmEnd = performance.now() + SETTINGS.warmupMs;
    for (let i = 0; peer.store.stats().evictions === 0 || performance.now() < warmEnd; i++) {
      if (i === 1_000) throw new Error("No eviction after 1,000,000 writes to a 1 MiB store");
      loop(1_000);
    }
    let n = 1_000;
    let ms = 0;
    while (ms < SETTINGS.roundMs / 4) {
      n *= 2;
      const start = performance.now();
      loop(n);
      ms = performance.now() - start;
    }
    n = Math.max(1_000, Math.round((n / ms) * SETTINGS.roundMs));
    const rates: number[] = [];
    let totalMs = 0;
    let totalWrites = 0;
    let totalEvictions = 0;
    for (let r = 0; r < SETTINGS.rounds; r++) {
      const before = peer.store.stats().evictions;
      const start = performance.now();
      loop(n);
      const elapsed = performance.now() - start;
      const evicted = peer.store.stats().evictions - before;
      rates.push((n / elapsed) * 1000);
      totalMs += elapsed;
      totalWrites += n;
      totalEvictions += evicted;
    }
    return {
      storeBytes: EVICTION_STORE,
      autoclean,
      valueBytes: VALUE_100.length,
      names: EVICTION_NAMES,
      writesPerSecond: median(rates),
      evictionsPerSecond: (totalEvictions / totalMs) * 1000,
      evictionsPerWrite: totalEvictions / totalWrites,
      entriesAfter: peer.store.stats().entries,
    };
  } finally {
    peer.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Two processes at once

interface ProcessRun {
  reads: number;
  readMs: number;
  /** The child's CPU time (user and system) during its reads. */
  readCpuMs: number;
  found: number;
  writes: number;
  writeMs: number;
  late: boolean;
}

/** Children that got the start time after it had passed (a loaded machine): they ran late. */
let lateStarts = 0;

/** Label of the two-process control: plain JavaScript that shares nothing. */
const CONTROL = "CPU-bound control, no store";

interface TwoProcessResult {
  peer: string;
  readsPerSecond1: number;
  readsPerSecond2: number;
  readScaling: number;
  writesPerSecond1: number;
  writesPerSecond2: number;
  writeScaling: number;
  /** Increments/s (the peer's own atomic counter) of one process, and of two at once. */
  incrementsPerSecond1: number;
  incrementsPerSecond2: number;
  incrementScaling: number;
  /** Every repeat's total ops/s: reads and writes of one process, of two processes. */
  samples: { reads1: number[]; reads2: number[]; writes1: number[]; writes2: number[] };
}

/** A child process with its stdout split into lines. */
class Child {
  readonly process: ChildProcess;
  readonly exited: Promise<number | null>;
  #lines: string[] = [];
  #stderr = "";
  /** How it exited: "with <code>" or "on <signal>". */
  #how = "";
  #wake: Array<() => void> = [];
  #done = false;

  constructor(argv: string[]) {
    this.process = spawn(argv[0]!, argv.slice(1), {
      cwd: fileURLToPath(new URL("..", import.meta.url)),
      stdio: ["pipe", "pipe", "pipe"],
      env: { ...process.env, NO_COLOR: "1" },
    });
    onLines(this.process.stdout!, (line) => {
      this.#lines.push(line);
      for (const wake of this.#wake.splice(0)) wake();
    });
    this.process.stderr!.setEncoding("utf8");
    this.process.stderr!.on("data", (chunk: string) => (this.#stderr += chunk));
    this.process.stdin!.on("error", () => {}); // a child that died first: its exit tells why
    this.exited = new Promise((resolve) => {
      this.process.on("close", (code, signal) => {
        this.#done = true;
        this.#how = signal === null ? `with ${code}` : `on ${signal}`;
        for (const wake of this.#wake.splice(0)) wake();
        resolve(code);
      });
    });
  }

  /** The first stdout line that satisfies `match`; rejects when the child exits or times out. */
  line(match: (line: string) => boolean, timeoutMs: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`No answer from the child in ${timeoutMs} ms: ${this.#stderr.trim()}`));
      }, timeoutMs);
      const check = () => {
        const found = this.#lines.find(match);
        if (found !== undefined) {
          clearTimeout(timer);
          resolve(found);
        } else if (this.#done) {
          clearTimeout(timer);
          reject(
            new Error(`The child exited ${this.#how}: ${this.#stderr.trim() || "no message"}`),
          );
        } else {
          this.#wake.push(check);
        }
      };
      check();
    });
  }

  /** Kills the child unless it has exited; waits for it. */
  async stop(): Promise<void> {
    if (!this.#done) this.process.kill("SIGKILL");
    await this.exited;
  }
}

/**
 * Runs a multi-process case, and once more when a peer's child died (lmdb-js's native addon
 * has been seen to crash a Node child without a word, once in several runs): the second try's
 * figures stand, and the first failure is printed. A memalloc child that dies is an error at once.
 */
async function retriedForPeers<T>(
  kind: SharedPeerKind | "cpu",
  label: string,
  run: () => Promise<T>,
): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (kind === "memalloc") throw error;
    console.error(`WARNING ${label}: ${errorMessage(error)}; running the case again`);
    return await run();
  }
}

/**
 * Runs one child per role on the peer at once (see `_compare_child.ts`) and returns what each
 * did, in the order of `roles`.
 */
async function runChildren(
  kind: SharedPeerKind | "cpu",
  location: string,
  roles: readonly ChildRole[],
): Promise<ProcessRun[]> {
  const script = fileURLToPath(new URL("./_compare_child.ts", import.meta.url));
  const ms = String(SETTINGS.twoProcessMs);
  // process.execPath is the running runtime's binary, under Deno, Bun and Node.
  const argv = (role: ChildRole) =>
    runtime === "deno"
      ? [process.execPath, "run", "-A", "--quiet", script, kind, location, ms, ms, role]
      : runtime === "node"
      ? [process.execPath, ...NODE_FLAGS, script, kind, location, ms, ms, role]
      : [process.execPath, script, kind, location, ms, ms, role];
  const children: Child[] = [];
  try {
    for (const role of roles) children.push(new Child(argv(role)));
    await Promise.all(children.map((child) => child.line((l) => l === "ready", 60_000)));
    const start = Math.ceil(epochNow()) + 200;
    for (const child of children) child.process.stdin!.end(`${start}\n`);
    const lines = await Promise.all(
      children.map((child) =>
        child.line((l) => l.startsWith("{"), 2 * SETTINGS.twoProcessMs + 60_000)
      ),
    );
    const codes = await Promise.all(children.map((child) => child.exited));
    if (codes.some((code) => code !== 0)) throw new Error(`A child exited with ${codes}`);
    const runs = lines.map((line) => JSON.parse(line) as ProcessRun);
    for (const run of runs) {
      if (run.found !== run.reads) throw new Error(`A child found ${run.found}/${run.reads}`);
      if (run.late) lateStarts++;
    }
    return runs;
  } finally {
    await Promise.all(children.map((child) => child.stop()));
  }
}

/**
 * One child alone, then two at once, on the peer (filled here first), `twoProcessRepeats`
 * times in turn; each figure is the best of its repeats, since whatever else runs on the machine
 * can only lower it. `peer` undefined runs the CPU-bound control instead.
 */
async function twoProcesses(
  kind: SharedPeerKind | "cpu",
  peer: Peer | undefined,
): Promise<TwoProcessResult> {
  const keys = names("p:", SHARED_NAMES);
  if (peer) { for (const key of keys) peer.setBytes(key, VALUE_100); }
  try {
    const location = peer?.location ?? "-";
    const reads = (runs: ProcessRun[]) => runs.reduce((s, r) => s + (r.reads / r.readMs) * 1000, 0);
    const writes = (runs: ProcessRun[]) =>
      runs.reduce((s, r) => s + (r.writes / r.writeMs) * 1000, 0);
    const samples = { reads1: [] as number[], reads2: [] as number[], writes1: [] as number[] };
    const writes2: number[] = [];
    const increments1: number[] = [];
    const increments2: number[] = [];
    for (let r = 0; r < SETTINGS.twoProcessRepeats; r++) {
      const one = await runChildren(kind, location, ["both"]);
      const two = await runChildren(kind, location, ["both", "both"]);
      samples.reads1.push(reads(one));
      samples.writes1.push(writes(one));
      samples.reads2.push(reads(two));
      writes2.push(writes(two));
      increments1.push(writes(await runChildren(kind, location, ["increment"])));
      increments2.push(writes(await runChildren(kind, location, ["increment", "increment"])));
    }
    const best = (values: number[]) => Math.max(...values);
    return {
      peer: peer?.name ?? CONTROL,
      readsPerSecond1: best(samples.reads1),
      readsPerSecond2: best(samples.reads2),
      readScaling: best(samples.reads2) / best(samples.reads1),
      writesPerSecond1: best(samples.writes1),
      writesPerSecond2: best(writes2),
      writeScaling: best(writes2) / best(samples.writes1),
      incrementsPerSecond1: best(increments1),
      incrementsPerSecond2: best(increments2),
      incrementScaling: best(increments2) / best(increments1),
      samples: { ...samples, writes2 },
    };
  } finally {
    if (peer) { for (const key of [...keys, ...names("q:", SHARED_NAMES)]) peer.delete(key); }
  }
}

// ---------------------------------------------------------------------------------------------
// A reader with a writer process on other names

interface OtherNamesResult {
  peer: string;
  /** Reads/s of the reader alone (set R). */
  readsAlone: number;
  /** Reads/s of the reader while the writer overwrites set W. */
  readsWithWriter: number;
  /** `readsWithWriter ÷ readsAlone`: 1 when writes elsewhere cost the reader nothing. */
  ratio: number;
  /** Reads per second of the reader's own CPU time, alone. */
  readsPerCpuSecondAlone: number;
  /** Reads per second of the reader's own CPU time, with the writer. */
  readsPerCpuSecondWithWriter: number;
  /**
   * `readsPerCpuSecondWithWriter ÷ readsPerCpuSecondAlone`: the ratio without the time a busy
   * machine gives to other processes (the writer among them).
   */
  cpuRatio: number;
  /** Writes/s of the writer (set W), during the reader's run. */
  writerWritesPerSecond: number;
  /** Every repeat's figures, in ops/s. */
  samples: {
    alone: number[];
    withWriter: number[];
    writer: number[];
    cpuAlone: number[];
    cpuWithWriter: number[];
  };
}

/**
 * The reader (set R) alone, then the reader and a writer (set W) at once, on the peer (both
 * sets filled here first), `twoProcessRepeats` times in turn; each figure is the best of its
 * repeats, as in {@linkcode twoProcesses}. `peer` undefined runs the CPU-bound control instead
 * (the "reader" and the "writer" hash the names of their set).
 */
async function writerOnOtherNames(
  kind: SharedPeerKind | "cpu",
  peer: Peer | undefined,
): Promise<OtherNamesResult> {
  const keys = [...READER_NAMES, ...WRITER_NAMES];
  if (peer) { for (const key of keys) peer.setBytes(key, VALUE_100); }
  try {
    const location = peer?.location ?? "-";
    const perSecond = (count: number, ms: number) => (count / ms) * 1000;
    const samples: OtherNamesResult["samples"] = {
      alone: [],
      withWriter: [],
      writer: [],
      cpuAlone: [],
      cpuWithWriter: [],
    };
    for (let r = 0; r < SETTINGS.twoProcessRepeats; r++) {
      const [alone] = await runChildren(kind, location, ["read-set"]);
      const [reader, writer] = await runChildren(kind, location, ["read-set", "write-set"]);
      samples.alone.push(perSecond(alone!.reads, alone!.readMs));
      samples.withWriter.push(perSecond(reader!.reads, reader!.readMs));
      samples.writer.push(perSecond(writer!.writes, writer!.writeMs));
      samples.cpuAlone.push(perSecond(alone!.reads, alone!.readCpuMs));
      samples.cpuWithWriter.push(perSecond(reader!.reads, reader!.readCpuMs));
    }
    const best = (values: number[]) => Math.max(...values);
    return {
      peer: peer?.name ?? CONTROL,
      readsAlone: best(samples.alone),
      readsWithWriter: best(samples.withWriter),
      ratio: best(samples.withWriter) / best(samples.alone),
      readsPerCpuSecondAlone: best(samples.cpuAlone),
      readsPerCpuSecondWithWriter: best(samples.cpuWithWriter),
      cpuRatio: best(samples.cpuWithWriter) / best(samples.cpuAlone),
      writerWritesPerSecond: best(samples.writer),
      samples,
    };
  } finally {
    if (peer) { for (const key of keys) peer.delete(key); }
  }
}

// ---------------------------------------------------------------------------------------------
// Memory per entry

interface MemoryResult {
  peer: string;
  entries: number;
  bytes?: number;
  bytesPerEntry?: number;
  note: string;
}

async function memoryOf(
  label: string,
  peer: Peer | AsyncPeer,
  mode: Mode,
  note: string,
): Promise<MemoryResult> {
  const n = SETTINGS.memoryEntries;
  const keys = names("k:", n);
  const target: Target = { label, peer, mode };
  const before = await peer.memoryBytes?.();
  await each(target, keys, (key) => peer.setBytes(key, VALUE_100));
  const after = await peer.memoryBytes?.();
  if (mode !== "sync") await each(target, keys, (key) => peer.delete(key));
  if (before === undefined || after === undefined) {
    return { peer: label, entries: n, note: "not measurable" };
  }
  return {
    peer: label,
    entries: n,
    bytes: after - before,
    bytesPerEntry: (after - before) / n,
    note,
  };
}

async function memory(peers: PeerSet): Promise<MemoryResult[]> {
  const results: MemoryResult[] = [];
  // Fresh stores, so that nothing freed earlier is reused and hides growth.
  const store = openMemallocPeer({ maxMemory: 64 << 20 });
  try {
    results.push(
      await memoryOf("memalloc", store, "sync", "stats().bytesUsed: entries, directory, heap"),
    );
  } finally {
    store.close();
  }
  if (peers.sync.some((peer) => peer.name === "Map")) {
    results.push({ peer: "Map", entries: SETTINGS.memoryEntries, note: "not measurable" });
  }
  if (peers.sync.some((peer) => peer.name === "lmdb-js")) {
    const lmdb = await openLmdbPeer({ onUnavailable: () => {} });
    if (lmdb) {
      try {
        results.push(await memoryOf("lmdb-js", lmdb, "sync", "blocks of data.mdb on /dev/shm"));
      } finally {
        await lmdb.close();
      }
    }
  }
  if (peers.sync.some((peer) => peer.name.startsWith("SQLite"))) {
    const sqlite = await openSqlitePeer({ onUnavailable: () => {} });
    if (sqlite) {
      try {
        results.push(
          await memoryOf("SQLite", sqlite, "sync", "blocks of kv.db, -wal, -shm on /dev/shm"),
        );
      } finally {
        sqlite.close();
      }
    }
  }
  const redis = peers.async.find((peer) => peer.name.includes("Redis"));
  if (redis) {
    results.push(
      await memoryOf("Redis", redis, "pipelined", "INFO used_memory delta (server process)"),
    );
  }
  const kv = peers.async.find((peer) => peer.name === "Deno KV");
  if (kv) {
    results.push(
      await memoryOf("Deno KV", kv, "awaited", "blocks of its SQLite files on /dev/shm"),
    );
  }
  return results;
}

// ---------------------------------------------------------------------------------------------
// Reporting helpers

const integer = (x: number) => Math.round(x).toLocaleString("en-US");
const scaling = (x: number) => `${x.toFixed(2)}×`;
const ratio = (x: number) => `${x >= 10 ? x.toFixed(0) : x >= 1 ? x.toFixed(1) : x.toFixed(2)}×`;

function machine() {
  const cpu = cpus();
  return {
    cpu: cpu[0]?.model ?? "?",
    cores: cpu.length,
    memoryBytes: totalmem(),
    os: `${process.platform} ${release()}`,
  };
}

function runtimeVersions(): Record<string, string> {
  const g = globalThis as {
    Deno?: { version: Record<string, string> };
    Bun?: { version: string; revision: string };
  };
  if (g.Deno) return { ...g.Deno.version };
  if (runtime === "node") return { node: process.versions.node, v8: process.versions.v8 };
  return { bun: g.Bun?.version ?? "?", revision: g.Bun?.revision ?? "?" };
}

// ---------------------------------------------------------------------------------------------
// Main

interface CaseResult extends Partial<Measurement> {
  scenario: string;
  target: string;
  peer: string;
  mode: Mode;
  error?: string;
}

const started = performance.now();
const errors: string[] = [];
const results: CaseResult[] = [];
const evictionResults: EvictionResult[] = [];
const twoProcessResults: TwoProcessResult[] = [];
const otherNamesResults: OtherNamesResult[] = [];
let memoryResults: MemoryResult[] = [];
const progress = (text: string) => console.error(`  [${runtime}] ${text}`);

console.log(
  `memalloc comparison benchmark, ${runtimeVersion()}, ${QUICK ? "quick" : "full"} mode`,
);
const host = machine();
const versions = runtimeVersions();
console.log(
  `machine: ${host.cpu}, ${host.cores} cores, ${(host.memoryBytes / 2 ** 30).toFixed(1)} GiB, ` +
    `${host.os}`,
);
console.log(`runtime: ${Object.entries(versions).map(([k, v]) => `${k} ${v}`).join(", ")}`);
/** The 1-minute load average: other work on the machine lowers every figure here. */
const loadAtStart = loadavg()[0] ?? 0;
console.log(`load average at start: ${loadAtStart.toFixed(2)} (${host.cores} cores)`);

for (const name of removeStaleBenchStores()) {
  console.log(`removed store "${name}" left behind by a benchmark that was killed`);
}
const main = openMemallocPeer();
let peers: PeerSet | undefined;
/** Every peer opened, kept for the report (closing empties the peer set's arrays). */
const opened: Array<Peer | AsyncPeer> = [main];
let skipped: PeerSet["skipped"] = [];
const targets: Target[] = [{ label: "memalloc", peer: main, mode: "sync" }];
try {
  peers = await openPeers();
  opened.push(...peers.sync, ...peers.async);
  skipped = peers.skipped;
  for (const peer of peers.sync) {
    targets.push({
      label: peer.name.startsWith("SQLite") ? "SQLite" : peer.name,
      peer,
      mode: "sync",
    });
  }
  for (const peer of peers.async) {
    const short = peer.name === "Deno KV"
      ? "Deno KV"
      : peer.name.startsWith("RedisStore")
      ? "RedisStore"
      : peer.name.startsWith("NearCache")
      ? "NearCache"
      : peer.name.includes("Bun")
      ? "Redis/Bun"
      : "Redis/node-redis";
    targets.push({ label: short, peer, mode: "awaited" });
    if (peer.pipelines) targets.push({ label: `${short} pipelined`, peer, mode: "pipelined" });
  }
  for (const skip of peers.skipped) console.log(`skipped ${skip.name}: ${skip.reason}`);

  progress(`memory: ${SETTINGS.memoryEntries.toLocaleString("en-US")} entries per peer`);
  memoryResults = await memory(peers);

  for (const scenario of SCENARIOS) {
    progress(scenario.label);
    for (const target of targets) {
      if (scenario.applies && !scenario.applies(target)) continue;
      const result: CaseResult = {
        scenario: scenario.id,
        target: target.label,
        peer: target.peer.name,
        mode: target.mode,
      };
      let cleanup: (() => Promise<void>) | undefined;
      try {
        const prepared = await scenario.prepare(target);
        cleanup = prepared.cleanup;
        Object.assign(result, await measure(target, prepared.run));
      } catch (error) {
        result.error = errorMessage(error);
        errors.push(`${scenario.label}, ${target.label}: ${result.error}`);
        console.error(`ERROR ${scenario.label}, ${target.label}: ${result.error}`);
      } finally {
        await cleanup?.();
      }
      results.push(result);
    }
  }

  progress("steady state under eviction (memalloc)");
  for (const autoclean of [0.8, 1]) {
    try {
      evictionResults.push(eviction(autoclean));
    } catch (error) {
      errors.push(`eviction, autoclean ${autoclean}: ${errorMessage(error)}`);
      console.error(`ERROR eviction, autoclean ${autoclean}: ${errorMessage(error)}`);
    }
  }

  const shared: Array<[SharedPeerKind, Peer]> = [["memalloc", main]];
  for (const peer of peers.sync) {
    if (peer.name === "lmdb-js") shared.push(["lmdb", peer]);
    if (peer.name.startsWith("SQLite")) shared.push(["sqlite", peer]);
  }
  for (const [kind, peer] of [...shared, ["cpu", undefined] as const]) {
    const label = peer?.name ?? CONTROL;
    progress(`two processes: ${label}`);
    try {
      twoProcessResults.push(await retriedForPeers(kind, label, () => twoProcesses(kind, peer)));
    } catch (error) {
      errors.push(`two processes, ${label}: ${errorMessage(error)}`);
      console.error(`ERROR two processes, ${label}: ${errorMessage(error)}`);
    }
  }
  for (const [kind, peer] of [...shared, ["cpu", undefined] as const]) {
    const label = peer?.name ?? CONTROL;
    progress(`a reader with a writer process on other names: ${label}`);
    try {
      otherNamesResults.push(
        await retriedForPeers(kind, label, () => writerOnOtherNames(kind, peer)),
      );
    } catch (error) {
      errors.push(`reader with a writer on other names, ${label}: ${errorMessage(error)}`);
      console.error(`ERROR reader with a writer on other names, ${label}: ${errorMessage(error)}`);
    }
  }
} finally {
  try {
    main.close();
  } finally {
    await peers?.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Tables

const columns = [...new Set(results.map((r) => r.target))];
const find = (scenario: string, target: string) =>
  results.find((r) => r.scenario === scenario && r.target === target);
const cellOps = (r: CaseResult | undefined) =>
  r === undefined ? "" : r.error !== undefined ? "error" : integer(r.opsPerSecond!);

console.log("\nops/s, one process (higher is better)");
printTable(SCENARIOS.map((s) => ({
  scenario: s.label,
  ...Object.fromEntries(columns.map((c) => [c, cellOps(find(s.id, c))])),
})));

console.log("\nmemalloc ÷ peer (above 1×: memalloc is faster)");
const others = columns.filter((c) => c !== "memalloc");
printTable(
  SCENARIOS.filter((s) =>
    find(s.id, "memalloc")?.opsPerSecond !== undefined &&
    others.some((c) => find(s.id, c)?.opsPerSecond !== undefined)
  ).map((s) => {
    const mine = find(s.id, "memalloc")?.opsPerSecond;
    return {
      scenario: s.label,
      ...Object.fromEntries(others.map((c) => {
        const theirs = find(s.id, c)?.opsPerSecond;
        return [c, mine && theirs ? ratio(mine / theirs) : ""];
      })),
    };
  }),
);
console.log(
  "¹ peers: bytes of cbor-x encode() stored, cbor-x decode() on every read (the " +
    "decode is timed); memalloc: write(object) / read() (stored as CBOR records over the store's " +
    "shared table of structures: the object holds nothing JSON would change)\n" +
    "² memalloc given the same cbor-x bytes as the peers, decoded the same way\n" +
    `³ over ${MIXED_NAMES.toLocaleString("en-US")} names at random, 100 B values (bytes)\n` +
    "⁵ each peer's own atomic counter: memalloc increment(), lmdb-js get + put in " +
    "transactionSync, SQLite INSERT ... ON CONFLICT DO UPDATE ... RETURNING, Redis INCR\n" +
    "⁶ entries that expire (in an hour; counters in a minute) with each peer's own expiry: " +
    "memalloc ttl, Redis SET PX / INCR + PEXPIRE in one EVAL, SQLite an expires column " +
    "compared on every read, Deno KV expireIn (lmdb-js has no expiry); set beside the same " +
    "scenario without one\n" +
    "⁷ memalloc only: read(name, { frozen: true }) of entries unchanged since the first read: " +
    "the version check, no decode\n" +
    "⁸ the peer's own put-if-absent: memalloc add(), lmdb-js putSync noOverwrite, SQLite " +
    "INSERT OR IGNORE, Redis SET NX, Deno KV atomic check(null) + set\n" +
    "⁹ memalloc only: write(name, object) over 1,024 names, the object encoded as records (the " +
    'default) or as JSON text (a handle opened with objects: "json")\n' +
    `pipelined: ${SETTINGS.pipelineDepth} requests in flight on the one connection; ` +
    "the other Redis columns await each request before sending the next",
);

console.log("\nsteady state under eviction, memalloc (every write is an insert that evicts)");
printTable(evictionResults.map((e) => ({
  store: `${e.storeBytes >> 20} MiB, autoclean ${e.autoclean}`,
  "data set": `${e.names.toLocaleString("en-US")} names × ${e.valueBytes} B`,
  "writes/s": integer(e.writesPerSecond),
  "evictions/s": integer(e.evictionsPerSecond),
  "evictions/write": e.evictionsPerWrite.toFixed(2),
  "entries held": integer(e.entriesAfter),
})));

console.log(
  `\ntwo processes of ${runtime} at once against one alone ` +
    `(${SETTINGS.twoProcessMs} ms per phase, best of ${SETTINGS.twoProcessRepeats}; reads and ` +
    "overwrites of 100 B, and increments of the peer's own counter, over " +
    `${SHARED_NAMES} names)`,
);
printTable(twoProcessResults.map((t) => ({
  peer: t.peer,
  "reads/s, 1 proc": integer(t.readsPerSecond1),
  "reads/s, 2 procs": integer(t.readsPerSecond2),
  "reads ×": scaling(t.readScaling),
  "writes/s, 1 proc": integer(t.writesPerSecond1),
  "writes/s, 2 procs": integer(t.writesPerSecond2),
  "writes ×": scaling(t.writeScaling),
  "increments/s, 1 proc": integer(t.incrementsPerSecond1),
  "increments/s, 2 procs": integer(t.incrementsPerSecond2),
  "increments ×": scaling(t.incrementScaling),
})));

console.log(
  `\na reader with a writer process on other names: one ${runtime} process reads ` +
    `${READER_NAMES.length} names alone, then while a second overwrites ` +
    `${WRITER_NAMES.length} others (${SETTINGS.twoProcessMs} ms, best of ` +
    `${SETTINGS.twoProcessRepeats}; 100 B values)`,
);
printTable(otherNamesResults.map((o) => ({
  peer: o.peer,
  "reads/s, alone": integer(o.readsAlone),
  "reads/s, with writer": integer(o.readsWithWriter),
  "with ÷ alone": scaling(o.ratio),
  "with ÷ alone, per CPU-s ⁴": scaling(o.cpuRatio),
  "writer's writes/s": integer(o.writerWritesPerSecond),
})));
console.log(
  "⁴ reads per second of the reader's own CPU time (user and system), with the writer ÷ alone: " +
    "leaves out the time a busy machine gives to other processes",
);

if (lateStarts > 0) {
  console.log(
    `note: ${lateStarts} child process(es) got the start time late and ran behind the others; ` +
      "the machine is busy",
  );
}

console.log(
  `\nmemory for ${SETTINGS.memoryEntries.toLocaleString("en-US")} entries ` +
    "(16-byte names, 100-byte values: 116 B of data each)",
);
printTable(memoryResults.map((m) => ({
  peer: m.peer,
  "bytes/entry": m.bytesPerEntry === undefined ? "n/a" : m.bytesPerEntry.toFixed(1),
  total: m.bytes === undefined ? "n/a" : `${(m.bytes / 2 ** 20).toFixed(1)} MiB`,
  measured: m.note,
})));

console.log("\npeers");
for (const peer of opened) console.log(`  ${peer.name}: ${peer.description}`);
for (const skip of skipped) console.log(`  skipped ${skip.name}: ${skip.reason}`);

// ---------------------------------------------------------------------------------------------
// Targets

interface TargetCheck {
  goal: string;
  met: boolean | null;
  figures: string;
}

const ops = (scenario: string, target: string) => {
  const r = find(scenario, target);
  return r?.error === undefined ? r?.opsPerSecond : undefined;
};
const checks: TargetCheck[] = [];
{
  const bytes = ops("read-bytes", "memalloc");
  const text = ops("read-string", "memalloc");
  checks.push({
    goal: "memalloc reads of 100-byte values >= 1,000,000/s",
    met: bytes === undefined || text === undefined ? null : bytes >= 1e6 && text >= 1e6,
    figures: `${integer(bytes ?? 0)}/s as bytes, ${integer(text ?? 0)}/s as string`,
  });
  const insert = ops("write-100", "memalloc");
  const over = ops("overwrite", "memalloc");
  checks.push({
    goal: "memalloc writes >= 2,000,000/s",
    met: insert === undefined || over === undefined ? null : insert >= 2e6 && over >= 2e6,
    figures: `${integer(insert ?? 0)}/s new names, ${integer(over ?? 0)}/s overwrites (100 B)`,
  });
  const redis = columns.filter((c) => c.startsWith("Redis/") && !c.endsWith("pipelined"));
  const redisRatios = redis.flatMap((c) =>
    (["read-bytes", "read-string"] as const).map((s) => {
      const mine = ops(s, "memalloc");
      const theirs = ops(s, c);
      return { c, s, value: mine && theirs ? mine / theirs : undefined };
    })
  );
  checks.push({
    goal: "memalloc reads >= 10× Redis over loopback (awaited)",
    met: redis.length === 0 || redisRatios.some((r) => r.value === undefined)
      ? null
      : redisRatios.every((r) => r.value! >= 10),
    figures: redis.length === 0
      ? "not measured: Redis skipped"
      : redisRatios.map((r) =>
        `${ratio(r.value ?? 0)} ${r.c} (${r.s === "read-bytes" ? "bytes" : "string"})`
      ).join(", "),
  });
  // RedisStore's bookkeeping (write order, size, version, eviction) against a plain SET.
  const storeRatios = (["write-100", "overwrite"] as const).map((s) => {
    const plain = ops(s, "Redis/node-redis");
    const store = ops(s, "RedisStore");
    return { s, value: plain && store ? plain / store : undefined };
  });
  checks.push({
    goal: "RedisStore writes within 1.5× the time of a plain SET (node-redis, awaited)",
    met: storeRatios.some((r) => r.value === undefined)
      ? null
      : storeRatios.every((r) => r.value! <= 1.5),
    figures: storeRatios.map((r) =>
      `${(r.value ?? 0).toFixed(2)}× (${r.s === "write-100" ? "new names" : "overwrites"})`
    ).join(", "),
  });
  const nearRatios = (["read-bytes", "read-string"] as const).map((s) => {
    const plain = ops(s, "Redis/node-redis");
    const near = ops(s, "NearCache");
    return { s, value: plain && near ? near / plain : undefined };
  });
  checks.push({
    goal: "NearCache hits >= 50× a Redis round trip (node-redis GET, awaited)",
    met: nearRatios.some((r) => r.value === undefined)
      ? null
      : nearRatios.every((r) => r.value! >= 50),
    figures: nearRatios.map((r) =>
      `${ratio(r.value ?? 0)} (${r.s === "read-bytes" ? "bytes" : "string"})`
    ).join(", "),
  });
  const lmdbRatios = (["read-bytes", "read-string"] as const).map((s) => {
    const mine = ops(s, "memalloc");
    const theirs = ops(s, "lmdb-js");
    return { s, value: mine && theirs ? mine / theirs : undefined };
  });
  checks.push({
    goal: "memalloc reads >= lmdb-js reads",
    met: lmdbRatios.some((r) => r.value === undefined)
      ? null
      : lmdbRatios.every((r) => r.value! >= 1),
    figures: lmdbRatios.map((r) =>
      `${ratio(r.value ?? 0)} (${r.s === "read-bytes" ? "bytes" : "string"})`
    ).join(", "),
  });
  const frozen = ops("read-object-frozen", "memalloc");
  const plainObject = ops("read-object", "memalloc");
  const lmdbObject = ops("read-object", "lmdb-js");
  checks.push({
    goal: "memalloc frozen reads of a 1 KiB object >= 10× lmdb-js get + decode",
    met: frozen === undefined || lmdbObject === undefined ? null : frozen / lmdbObject >= 10,
    figures: frozen === undefined || lmdbObject === undefined
      ? "not measured"
      : `${ratio(frozen / lmdbObject)}: ${integer(frozen)}/s against ${integer(lmdbObject)}/s`,
  });
  checks.push({
    goal: "memalloc plain reads of a 1 KiB object >= 1.5× lmdb-js get + decode",
    met: plainObject === undefined || lmdbObject === undefined
      ? null
      : plainObject / lmdbObject >= 1.5,
    figures: plainObject === undefined || lmdbObject === undefined
      ? "not measured"
      : `${ratio(plainObject / lmdbObject)}: ${integer(plainObject)}/s against ${
        integer(lmdbObject)
      }/s`,
  });
  const increments = ops("increment", "memalloc");
  checks.push({
    goal: "memalloc increments >= 1,500,000/s",
    met: increments === undefined ? null : increments >= 1.5e6,
    figures: `${integer(increments ?? 0)}/s over ${
      INCREMENT_NAMES.toLocaleString("en-US")
    } counters`,
  });
  const ttlRead = ops("read-string-ttl", "memalloc");
  const plainRead = ops("read-string", "memalloc");
  checks.push({
    goal: "memalloc reads of an entry with a TTL within 5% of reads without one",
    met: ttlRead === undefined || plainRead === undefined ? null : ttlRead / plainRead >= 0.95,
    figures: ttlRead === undefined || plainRead === undefined
      ? "not measured"
      : `${ratio(ttlRead / plainRead)}: ${integer(ttlRead)}/s against ${integer(plainRead)}/s`,
  });
  const two = twoProcessResults.find((t) => t.peer === "memalloc");
  const control = twoProcessResults.find((t) => t.peer === CONTROL);
  checks.push({
    goal: "two memalloc processes reading >= 1.8× one process",
    met: two === undefined ? null : two.readScaling >= 1.8,
    figures: two === undefined
      ? "not measured"
      : `${scaling(two.readScaling)}: ${integer(two.readsPerSecond2)}/s against ${
        integer(two.readsPerSecond1)
      }/s` +
        (control === undefined
          ? ""
          : `; this machine's ceiling (the CPU-bound control) is ${scaling(control.readScaling)}`),
  });
  checks.push({
    goal: "two memalloc processes writing >= 1.2× one process",
    met: two === undefined ? null : two.writeScaling >= 1.2,
    figures: two === undefined
      ? "not measured"
      : `${scaling(two.writeScaling)}: ${integer(two.writesPerSecond2)}/s against ${
        integer(two.writesPerSecond1)
      }/s` +
        (control === undefined
          ? ""
          : `; this machine's ceiling (the CPU-bound control) is ${scaling(control.writeScaling)}`),
  });
  const other = otherNamesResults.find((o) => o.peer === "memalloc");
  const otherControl = otherNamesResults.find((o) => o.peer === CONTROL);
  checks.push({
    goal: "memalloc reads with a writer process on other names >= 0.85× reads alone",
    met: other === undefined ? null : other.ratio >= 0.85,
    figures: other === undefined
      ? "not measured"
      : `${scaling(other.ratio)}: ${integer(other.readsWithWriter)}/s against ${
        integer(other.readsAlone)
      }/s alone (${scaling(other.cpuRatio)} per CPU-second of the reader)` +
        (otherControl === undefined
          ? ""
          : `; a busy second core alone (the CPU-bound control) gives ${
            scaling(otherControl.ratio)
          }`),
  });
}
console.log(`\ntargets (${runtimeVersion()}, per process)`);
for (const check of checks) {
  const verdict = check.met === null ? "NOT MEASURED" : check.met ? "met" : "NOT MET";
  console.log(`  ${verdict.padEnd(12)} ${check.goal}: ${check.figures}`);
}

const data = {
  mode: QUICK ? "quick" : "full",
  machine: host,
  versions,
  settings: SETTINGS,
  peers: opened.map((p) => ({ name: p.name, description: p.description })),
  skipped,
  values: {
    bytes: VALUE_100.length,
    string: STRING_100.length,
    large: VALUE_4K.length,
    structured: STRUCTURED_BYTES.length,
  },
  scenarios: SCENARIOS.map((s) => ({
    id: s.id,
    label: s.label,
    results: results.filter((r) => r.scenario === s.id).map((r) => {
      const mine = find(s.id, "memalloc")?.opsPerSecond;
      return {
        ...r,
        memallocRatio: mine && r.opsPerSecond ? mine / r.opsPerSecond : undefined,
      };
    }),
  })),
  eviction: evictionResults,
  twoProcesses: twoProcessResults,
  writerOnOtherNames: otherNamesResults,
  lateStarts,
  memory: memoryResults,
  targets: checks,
  errors,
  seconds: (performance.now() - started) / 1000,
  loadAverage: { start: loadAtStart, end: loadavg()[0] ?? 0 },
};
const path = writeResults("compare", data);
if (PRINT_JSON) console.log(JSON.stringify({ runtime: runtimeVersion(), ...data }, null, 2));
console.log(
  `\nwrote ${path} (${data.seconds.toFixed(0)} s; load average ${loadAtStart.toFixed(2)} at ` +
    `start, ${data.loadAverage.end.toFixed(2)} at the end)`,
);
if (errors.length > 0) {
  console.error(`${errors.length} case(s) failed:\n  ${errors.join("\n  ")}`);
  process.exitCode = 1;
}
