/**
 * One process of the two-process scenario of `compare_bench.ts`: attaches to a peer the parent
 * opened and filled, reads for a while, then overwrites for a while, and prints what it did.
 *
 * Usage: `<runtime> _compare_child.ts <memalloc|lmdb|sqlite|cpu> <location> <readMs> <writeMs>`
 *
 * `cpu` is the control: no store at all, each "read" and "write" hashes the entry name in plain
 * JavaScript. How its total grows from one process to two is what this machine's cores allow
 * for work that shares nothing.
 *
 * Protocol, so that all children start together (a barrier):
 * 1. attach, check the data, warm up, then print `ready` on stdout;
 * 2. wait for one line on stdin: the start time (ms since the epoch, a moment in the future);
 * 3. read the 100-byte values of the `SHARED_NAMES` entries round-robin from the start time for
 *    `readMs`, then, from 50 ms after that, overwrite them round-robin for `writeMs`;
 * 4. print one JSON line `{"reads":…,"readMs":…,"found":…,"writes":…,"writeMs":…}` and exit.
 *
 * @module
 */
import process from "node:process";
import type { Peer } from "./peers/types.ts";
import {
  attachPeer,
  epochNow,
  names,
  SHARED_NAMES,
  type SharedPeerKind,
  VALUE_100,
} from "./_compare_data.ts";

const [kind, location, readArg, writeArg] = process.argv.slice(2);
if (
  (kind !== "memalloc" && kind !== "lmdb" && kind !== "sqlite" && kind !== "cpu") ||
  location === undefined || readArg === undefined || writeArg === undefined
) {
  console.error(
    "Usage: _compare_child.ts <memalloc|lmdb|sqlite|cpu> <location> <readMs> <writeMs>",
  );
  process.exit(2);
}
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

const peer = kind === "cpu" ? cpuControl() : await attachPeer(kind as SharedPeerKind, location);
try {
  const keys = names("p:", SHARED_NAMES);
  const mask = SHARED_NAMES - 1;
  const check = peer.getBytes(keys[0]!);
  if (check === undefined || check.length !== VALUE_100.length) {
    throw new Error(`The parent's data is not there: "${keys[0]}" reads ${check?.length} bytes`);
  }
  // Warm-up: compile the read and write paths before the timed run.
  for (let i = 0; i < 20_000; i++) peer.getBytes(keys[i & mask]!);
  for (let i = 0; i < 2_000; i++) peer.setBytes(keys[i & mask]!, VALUE_100);

  console.log("ready");
  const start = Number(await firstLine());
  if (!(start > 0)) throw new Error("Bad start time on stdin");
  // A child that got the start time late (a loaded machine) starts at once and says so.
  const late = epochNow() > start;
  while (epochNow() < start); // spin: setTimeout is too coarse for a barrier

  let reads = 0;
  let found = 0;
  const readStart = epochNow();
  const readEnd = start + readMs;
  let now = readStart;
  while (now < readEnd) {
    for (let k = 0; k < 256; k++, reads++) {
      if (peer.getBytes(keys[reads & mask]!) !== undefined) found++;
    }
    now = epochNow();
  }
  const readTime = now - readStart;

  // The write phase starts at the same moment in every child too.
  const writeStart = start + readMs + WRITE_GAP_MS;
  while (epochNow() < writeStart);
  let writes = 0;
  const writeEnd = writeStart + writeMs;
  now = writeStart;
  while (now < writeEnd) {
    for (let k = 0; k < 64; k++, writes++) peer.setBytes(keys[writes & mask]!, VALUE_100);
    now = epochNow();
  }
  const writeTime = now - writeStart;
  console.log(JSON.stringify({ reads, readMs: readTime, found, writes, writeMs: writeTime, late }));
} finally {
  await peer.close();
}
