/**
 * Smoke test of the benchmark peers: opens every peer available here, checks set/get/delete of
 * bytes and strings, times reads of a 100-byte value and prints ops/s. Not a benchmark (not
 * named *_bench.ts, writes no results): it shows that each peer works on this runtime.
 *
 * Usage: deno run -A bench/peers_smoke.ts | bun bench/peers_smoke.ts
 *
 * @module
 */
import { printTable, runtimeVersion } from "./_report.ts";
import { type AsyncPeer, openPeers, type Peer } from "./peers/index.ts";

const SYNC_READS = 100_000;
const ASYNC_READS = 10_000;
/** Requests in flight together for the pipelined Redis figure. */
const PIPELINE_DEPTH = 100;

let failures = 0;
function check(peer: { name: string }, what: string, ok: boolean): void {
  if (!ok) {
    failures++;
    console.error(`FAIL ${peer.name}: ${what}`);
  }
}

const sameBytes = (a: Uint8Array | undefined, b: Uint8Array) =>
  a !== undefined && a.length === b.length && a.every((x, i) => x === b[i]);

const bytes = new Uint8Array([0, 1, 127, 128, 254, 255, 0]);
const text = "héllo, wörld ✓ 𝄞";
const value100 = Uint8Array.from({ length: 100 }, (_, i) => (i * 37) & 0xff);
const string100 = "x".repeat(100);
const kib = (n: number | undefined) => n === undefined ? "n/a" : `${(n / 1024).toFixed(0)} KiB`;

/** Checks the contract of a peer, sync or async (await on a plain value is a no-op). */
async function verify(peer: Peer | AsyncPeer): Promise<void> {
  await peer.delete("smoke:bytes");
  await peer.delete("smoke:string");
  check(peer, "missing bytes are undefined", (await peer.getBytes("smoke:bytes")) === undefined);
  check(peer, "missing string is undefined", (await peer.getString("smoke:string")) === undefined);
  await peer.setBytes("smoke:bytes", bytes);
  check(peer, "bytes round-trip", sameBytes(await peer.getBytes("smoke:bytes"), bytes));
  await peer.setString("smoke:string", text);
  check(peer, "string round-trip", (await peer.getString("smoke:string")) === text);
  await peer.setString("smoke:string", "second");
  check(peer, "overwrite", (await peer.getString("smoke:string")) === "second");
  check(
    peer,
    "string read as bytes is its UTF-8",
    sameBytes(await peer.getBytes("smoke:string"), new TextEncoder().encode("second")),
  );
  // void is allowed for a store that cannot tell; every peer here tells.
  const removed = await peer.delete("smoke:bytes");
  check(peer, "delete returns true", removed === true || removed === undefined);
  const again = await peer.delete("smoke:bytes");
  check(peer, "delete again returns false", again === false || again === undefined);
  check(peer, "deleted is gone", (await peer.getBytes("smoke:bytes")) === undefined);
  await peer.delete("smoke:string");
}

/** Counts the reads that found a value, so that the JIT cannot drop the calls as dead code. */
let found = 0;

/** ops/s of `n` calls of `body`, after a warm-up of n/10 calls. */
function timeSync(n: number, body: () => unknown): number {
  for (let i = 0; i < n / 10; i++) body();
  const start = performance.now();
  for (let i = 0; i < n; i++) if (body() !== undefined) found++;
  return Math.round(n / ((performance.now() - start) / 1000));
}

/** ops/s of `n` awaited calls, one at a time, after a warm-up of n/10 calls. */
async function timeAwaited(n: number, body: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < n / 10; i++) await body();
  const start = performance.now();
  for (let i = 0; i < n; i++) if ((await body()) !== undefined) found++;
  return Math.round(n / ((performance.now() - start) / 1000));
}

/** ops/s of `n` calls issued `depth` at a time (pipelined), after a warm-up. */
async function timePipelined(n: number, depth: number, body: () => Promise<unknown>) {
  const batch = () => Promise.all(Array.from({ length: depth }, body));
  for (let i = 0; i < n / depth / 10; i++) await batch();
  const start = performance.now();
  for (let i = 0; i < n / depth; i++) await batch();
  return Math.round(n / ((performance.now() - start) / 1000));
}

console.log(`peers smoke test on ${runtimeVersion()}`);
const peers = await openPeers();
/** Timed awaited or sync reads: two measurements per peer. */
const expectedFound = 2 * (peers.sync.length * SYNC_READS + peers.async.length * ASYNC_READS);
try {
  for (const skip of peers.skipped) console.log(`skipped ${skip.name}: ${skip.reason}`);
  const rows: Array<Record<string, string | number>> = [];
  for (const peer of peers.sync) {
    await verify(peer);
    peer.setBytes("smoke:v", value100);
    peer.setString("smoke:s", string100);
    check(peer, "100-byte value", sameBytes(peer.getBytes("smoke:v"), value100));
    rows.push({
      peer: peer.name,
      mode: "sync",
      "getBytes ops/s": timeSync(SYNC_READS, () => peer.getBytes("smoke:v")),
      "getString ops/s": timeSync(SYNC_READS, () => peer.getString("smoke:s")),
      memory: kib(peer.memoryBytes?.()),
    });
    peer.delete("smoke:v");
    peer.delete("smoke:s");
  }
  for (const peer of peers.async) {
    await verify(peer);
    await peer.setBytes("smoke:v", value100);
    await peer.setString("smoke:s", string100);
    check(peer, "100-byte value", sameBytes(await peer.getBytes("smoke:v"), value100));
    rows.push({
      peer: peer.name,
      mode: "awaited, 1 in flight",
      "getBytes ops/s": await timeAwaited(ASYNC_READS, () => peer.getBytes("smoke:v")),
      "getString ops/s": await timeAwaited(ASYNC_READS, () => peer.getString("smoke:s")),
      memory: kib(await peer.memoryBytes?.()),
    });
    if (peer.pipelines) {
      rows.push({
        peer: peer.name,
        mode: `PIPELINED, ${PIPELINE_DEPTH} in flight`,
        "getBytes ops/s": await timePipelined(
          ASYNC_READS,
          PIPELINE_DEPTH,
          () => peer.getBytes("smoke:v"),
        ),
        "getString ops/s": await timePipelined(
          ASYNC_READS,
          PIPELINE_DEPTH,
          () => peer.getString("smoke:s"),
        ),
        memory: "",
      });
    }
    await peer.delete("smoke:v");
    await peer.delete("smoke:s");
  }
  console.log();
  printTable(rows);
  console.log();
  for (const peer of [...peers.sync, ...peers.async]) {
    console.log(`${peer.name}: ${peer.description}`);
  }
} finally {
  await peers.close();
}
if (found !== expectedFound) {
  failures++;
  console.error(`FAIL timed reads: ${found} of ${expectedFound} found their value`);
}
if (failures > 0) {
  console.error(`${failures} check(s) failed`);
  throw new Error("peers smoke test failed");
}
console.log("\nall checks passed");
