/**
 * One process of the multi-process scenarios of `compare_bench.ts`: attaches to a peer the
 * parent opened and filled, runs its role for a while, and prints what it did.
 *
 * Usage:
 * `<runtime> _compare_child.ts <memalloc|lmdb|sqlite|cpu> <location> <readMs> <writeMs> [role]`
 *
 * Roles:
 * - `both` (the default; the two-process scenario): read the 100-byte values of the
 *   `SHARED_NAMES` entries `"p:..."` round-robin from the start time for `readMs`, then, from
 *   50 ms after that, overwrite them round-robin for `writeMs`;
 * - `read-set` (the reader of the scenario with a writer on other names): read the values of
 *   set R ({@linkcode READER_NAMES}) round-robin from the start time for `readMs`, nothing else;
 * - `write-set` (its writer): overwrite the values of set W ({@linkcode WRITER_NAMES}, disjoint
 *   from set R) round-robin with 100-byte values from the start time for `writeMs`, nothing else;
 * - `increment`: increment the `SHARED_NAMES` counters `"q:..."` round-robin with the peer's own
 *   atomic counter from the start time for `writeMs` (reported as writes).
 *
 * `cpu` is the control: no store at all, each "read" and "write" hashes the entry name in plain
 * JavaScript. How its figures change from one process to two is what this machine's cores allow
 * for work that shares nothing.
 *
 * Protocol, so that all children start together (a barrier):
 * 1. attach, check the data, warm up, then print `ready` on stdout;
 * 2. wait for one line on stdin: the start time (ms since the epoch, a moment in the future);
 * 3. run the role's phases from the start time;
 * 4. print one JSON line
 *    `{"reads":…,"readMs":…,"readCpuMs":…,"found":…,"writes":…,"writeMs":…,"late":…}` (zeros for
 *    a phase the role does not have; `readCpuMs`: this process's CPU time during the reads) and
 *    exit.
 *
 * @module
 */
import process from "node:process";
import type { Peer } from "./peers/types.ts";
import {
  attachPeer,
  CHILD_ROLES,
  type ChildRole,
  epochNow,
  names,
  READER_NAMES,
  SHARED_NAMES,
  type SharedPeerKind,
  VALUE_100,
  WRITER_NAMES,
} from "./_compare_data.ts";

const USAGE = "Usage: _compare_child.ts <memalloc|lmdb|sqlite|cpu> <location> <readMs> <writeMs> " +
  `[${CHILD_ROLES.join("|")}]`;
const [kind, location, readArg, writeArg, roleArg = "both"] = process.argv.slice(2);
if (
  (kind !== "memalloc" && kind !== "lmdb" && kind !== "sqlite" && kind !== "cpu") ||
  location === undefined || readArg === undefined || writeArg === undefined ||
  !(CHILD_ROLES as readonly string[]).includes(roleArg)
) {
  console.error(USAGE);
  process.exit(2);
}
const role = roleArg as ChildRole;
const readMs = Number(readArg);
/** Pause between the read phase and the write phase, so that no child is still reading. */
const WRITE_GAP_MS = 50;
const writeMs = Number(writeArg);

/** Resolves with the first line on stdin. */
function firstLine(): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    process.stdin.setEncoding("utf8");
    process.stdin.on("data", (chunk: string) => {
      text += chunk;
      const newline = text.indexOf("\n");
      if (newline >= 0) {
        process.stdin.pause();
        resolve(text.slice(0, newline));
      }
    });
    process.stdin.on("end", () => reject(new Error("stdin closed before the start time came")));
  });
}

/** The control: FNV-1a of the name in plain JavaScript, no memory shared with anyone. */
function cpuControl(): Peer {
  let sink = 0;
  const hash = (key: string) => {
    let h = 0x811c9dc5;
    for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
    for (let i = 0; i < key.length; i++) h = Math.imul(h ^ (h >>> 13), 0x5bd1e995);
    return h;
  };
  return {
    name: "CPU-bound control",
    description: "no store: hashes the name in JavaScript",
    sharesAcrossProcesses: false,
    getBytes: (key) => (sink ^= hash(key)) === 0.5 ? undefined : VALUE_100,
    getString: () => undefined,
    setBytes: (key) => void (sink ^= hash(key)),
    setString: () => {},
    delete: () => false,
    close: () => {},
  };
}

/**
 * Reads `keys` round-robin from `from` (ms since the epoch) for `ms`; `readCpuMs` is the CPU
 * time this process used meanwhile (user and system), which leaves out the time the machine gave
 * to other processes.
 */
function readFor(
  peer: Peer,
  keys: readonly string[],
  from: number,
  ms: number,
): { reads: number; readMs: number; readCpuMs: number; found: number } {
  const mask = keys.length - 1;
  let reads = 0;
  let found = 0;
  const cpuStart = process.cpuUsage();
  const readStart = epochNow();
  const readEnd = from + ms;
  let now = readStart;
  // At least one batch, so that a child that starts after the end still gives a figure.
  do {
    for (let k = 0; k < 256; k++, reads++) {
      if (peer.getBytes(keys[reads & mask]!) !== undefined) found++;
    }
    now = epochNow();
  } while (now < readEnd);
  const cpu = process.cpuUsage(cpuStart);
  return { reads, readMs: now - readStart, readCpuMs: (cpu.user + cpu.system) / 1000, found };
}

/**
 * Overwrites `keys` round-robin with 100-byte values from `from` for `ms`, timed from `from`
 * (a child that starts late is slower by as much), at least one batch.
 */
function writeFor(
  peer: Peer,
  keys: readonly string[],
  from: number,
  ms: number,
): { writes: number; writeMs: number } {
  const mask = keys.length - 1;
  while (epochNow() < from); // spin: setTimeout is too coarse for a barrier
  let writes = 0;
  const writeEnd = from + ms;
  let now = from;
  while (now < writeEnd) {
    for (let k = 0; k < 64; k++, writes++) peer.setBytes(keys[writes & mask]!, VALUE_100);
    now = epochNow();
  }
  return { writes, writeMs: now - from };
}

/** Increments `keys` round-robin from `from` for `ms` (the control hashes the names instead). */
function incrementFor(
  peer: Peer,
  keys: readonly string[],
  from: number,
  ms: number,
): { writes: number; writeMs: number } {
  const mask = keys.length - 1;
  const increment = peer.increment?.bind(peer) ??
    ((key: string) => (peer.setBytes(key, VALUE_100), 0));
  while (epochNow() < from); // spin: setTimeout is too coarse for a barrier
  let writes = 0;
  const writeEnd = from + ms;
  let now = from;
  while (now < writeEnd) {
    for (let k = 0; k < 64; k++, writes++) increment(keys[writes & mask]!);
    now = epochNow();
  }
  return { writes, writeMs: now - from };
}

const peer = kind === "cpu" ? cpuControl() : await attachPeer(kind as SharedPeerKind, location);
try {
  if (role === "increment") {
    const counters = names("q:", SHARED_NAMES);
    const increment = peer.increment?.bind(peer);
    for (let i = 0; i < 2_000; i++) {
      const key = counters[i & (SHARED_NAMES - 1)]!;
      if (increment) increment(key);
      else peer.setBytes(key, VALUE_100);
    }
    console.log("ready");
    const start = Number(await firstLine());
    if (!(start > 0)) throw new Error("Bad start time on stdin");
    const late = epochNow() > start;
    const none = { reads: 0, readMs: 0, readCpuMs: 0, found: 0 };
    console.log(JSON.stringify({ ...none, ...incrementFor(peer, counters, start, writeMs), late }));
  } else {
    const keys = role === "both"
      ? names("p:", SHARED_NAMES)
      : role === "read-set"
      ? READER_NAMES
      : WRITER_NAMES;
    const mask = keys.length - 1;
    const check = peer.getBytes(keys[0]!);
    if (check === undefined || check.length !== VALUE_100.length) {
      throw new Error(`The parent's data is not there: "${keys[0]}" reads ${check?.length} bytes`);
    }
    // Warm-up: compile the read and write paths the role times, before the timed run.
    if (role !== "write-set") { for (let i = 0; i < 20_000; i++) peer.getBytes(keys[i & mask]!); }
    if (role !== "read-set") {
      for (let i = 0; i < 2_000; i++) peer.setBytes(keys[i & mask]!, VALUE_100);
    }

    console.log("ready");
    const start = Number(await firstLine());
    if (!(start > 0)) throw new Error("Bad start time on stdin");
    // A child that got the start time late (a loaded machine) starts at once and says so.
    const late = epochNow() > start;
    while (epochNow() < start); // spin: setTimeout is too coarse for a barrier

    const none = { reads: 0, readMs: 0, readCpuMs: 0, found: 0, writes: 0, writeMs: 0 };
    const run = role === "both"
      ? {
        ...readFor(peer, keys, start, readMs),
        // The write phase starts at the same moment in every child too.
        ...writeFor(peer, keys, start + readMs + WRITE_GAP_MS, writeMs),
      }
      : role === "read-set"
      ? { ...none, ...readFor(peer, keys, start, readMs) }
      : { ...none, ...writeFor(peer, keys, start, writeMs) };
    console.log(JSON.stringify({ ...run, late }));
  }
} finally {
  await peer.close();
}
