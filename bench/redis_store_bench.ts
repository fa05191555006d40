/**
 * `RedisStore` against the plain commands it is built on, on one redis-server: a RedisStore
 * write (one Lua script: the value, its metadata, the write order, the byte counter, eviction
 * past maxMemory, a publish for watchers) against a plain `SET`, and a RedisStore read (one
 * `HMGET` and a decode) against a plain `GET`, both with node-redis, and under Bun with Bun's
 * own `RedisClient` too. 100-byte strings over 1,000 names in turn; one awaited request at a
 * time (a request handler's cache call), and 100 requests in flight on the connection
 * ("pipelined"). Rounds of the plain command and of RedisStore alternate, so that both see the
 * same load; the figures are the medians of the rounds, the ratio the median of the rounds' time
 * ratios (RedisStore's time ÷ the plain command's, same client library, same mode). Timings are
 * reported, never asserted.
 *
 * Usage:
 *   deno run -A bench/redis_store_bench.ts [--quick]
 *   bun bench/redis_store_bench.ts [--quick]
 *   deno task bench redis_store -- --quick     (Deno, Bun and Node, one after the other)
 *
 * NearCache: reads through it of names it holds (every read a hit; and `peek`), and a mix of 90%
 * hits and 10% reads of names the server does not have, against `GET`, one awaited at a time.
 *
 * Results go to `bench/results/redis-store-<runtime>.json`.
 *
 * @module
 */
import process from "node:process";
import { runtime } from "../ffi/runtime.ts";
import { printTable, runtimeVersion, writeResults } from "./_report.ts";
import { openRedisPeer, startRedisServer } from "./peers/redis.ts";
import { openRedisStorePeer } from "./peers/redis_store.ts";
import { openNearCachePeer } from "./peers/near_cache.ts";
import type { AsyncPeer } from "./peers/types.ts";

const QUICK = process.argv.includes("--quick");
const ROUNDS = QUICK ? 3 : 7;
const OPS = QUICK ? 5_000 : 20_000;
const NAMES = Array.from({ length: 1_000 }, (_, i) => `bench:${i}`);
const VALUE = "v".repeat(100);

type Mode = "awaited" | "pipelined";

/** ops/s of one round of `op` over OPS calls: one at a time, or 100 in flight. */
async function round(op: (i: number) => Promise<unknown>, mode: Mode): Promise<number> {
  const started = performance.now();
  if (mode === "awaited") {
    for (let i = 0; i < OPS; i++) await op(i);
  } else {
    for (let i = 0; i < OPS; i += 100) {
      const batch: Promise<unknown>[] = [];
      for (let j = i; j < i + 100 && j < OPS; j++) batch.push(op(j));
      await Promise.all(batch);
    }
  }
  return OPS / ((performance.now() - started) / 1000);
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1]!;

/**
 * The median ops/s of `plain` and of `mine`, their rounds alternating so that both see the same
 * load, and the median of the rounds' time ratios (mine's time ÷ plain's).
 */
async function pair(
  plain: (i: number) => Promise<unknown>,
  mine: (i: number) => Promise<unknown>,
  mode: Mode,
): Promise<{ plain: number; mine: number; ratio: number }> {
  await round(plain, mode); // warm-up
  await round(mine, mode);
  const plains: number[] = [], mines: number[] = [], ratios: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const a = await round(plain, mode);
    const b = await round(mine, mode);
    plains.push(a);
    mines.push(b);
    ratios.push(a / b);
  }
  return { plain: median(plains), mine: median(mines), ratio: median(ratios) };
}

const server = await startRedisServer();
const rows: Array<Record<string, string | number>> = [];
const results: Array<Record<string, unknown>> = [];
try {
  const plain: AsyncPeer[] = [];
  for (
    const client of runtime === "bun" ? ["node-redis", "bun"] as const : ["node-redis"] as const
  ) {
    const peer = await openRedisPeer({ client, url: server.url });
    if (peer) plain.push(peer);
  }
  const store = (await openRedisStorePeer({ url: server.url }))!;
  console.log(`${runtimeVersion()}, redis-server ${server.version}, ${OPS} ops x ${ROUNDS} rounds`);
  for (const peer of plain) await Promise.all(NAMES.map((name) => peer.setString(name, VALUE)));
  await Promise.all(NAMES.map((name) => store.setString(name, VALUE)));
  const name = (i: number) => NAMES[i % NAMES.length]!;
  for (const mode of ["awaited", "pipelined"] as const) {
    const base = plain[0]!;
    const write = await pair(
      (i) => base.setString(name(i), VALUE),
      (i) => store.setString(name(i), VALUE),
      mode,
    );
    const read = await pair((i) => base.getString(name(i)), (i) => store.getString(name(i)), mode);
    rows.push(
      { mode, operation: "SET (node-redis)", "ops/s": Math.round(write.plain), "time ×": "" },
      {
        mode,
        operation: "RedisStore.write",
        "ops/s": Math.round(write.mine),
        "time ×": `${write.ratio.toFixed(2)} of SET`,
      },
      { mode, operation: "GET (node-redis)", "ops/s": Math.round(read.plain), "time ×": "" },
      {
        mode,
        operation: "RedisStore.read",
        "ops/s": Math.round(read.mine),
        "time ×": `${read.ratio.toFixed(2)} of GET`,
      },
    );
    results.push({ mode, client: "node-redis", write, read });
    const bun = plain[1];
    if (bun !== undefined) {
      const bunWrite = await pair(
        (i) => bun.setString(name(i), VALUE),
        (i) => store.setString(name(i), VALUE),
        mode,
      );
      const bunRead = await pair(
        (i) => bun.getString(name(i)),
        (i) => store.getString(name(i)),
        mode,
      );
      rows.push(
        {
          mode,
          operation: "SET (Bun RedisClient)",
          "ops/s": Math.round(bunWrite.plain),
          "time ×": `RedisStore.write: ${bunWrite.ratio.toFixed(2)} of it`,
        },
        {
          mode,
          operation: "GET (Bun RedisClient)",
          "ops/s": Math.round(bunRead.plain),
          "time ×": `RedisStore.read: ${bunRead.ratio.toFixed(2)} of it`,
        },
      );
      results.push({ mode, client: "bun", write: bunWrite, read: bunRead });
    }
  }
  // NearCache: reads of 1,000 names it holds, against GET, one at a time; and a mix of 90%
  // such hits and 10% reads of names the server does not have (a round trip each, never kept).
  const near = (await openNearCachePeer({ url: server.url }))!;
  await Promise.all(NAMES.map((name) => near.setString(name, VALUE)));
  await new Promise((resolve) => setTimeout(resolve, 200)); // the writes' invalidations
  for (const name of NAMES) await near.getString(name); // fetched once: copies from now on
  for (const base of plain) {
    const against = base.name.includes("Bun") ? "Bun RedisClient" : "node-redis";
    const hit = await pair(
      (i) => base.getString(name(i)),
      (i) => near.getString(name(i)),
      "awaited",
    );
    // peek is synchronous: a plain loop, beside the same GET rounds.
    const peekRounds: number[] = [];
    const getRounds: number[] = [];
    for (let r = 0; r <= ROUNDS; r++) {
      getRounds.push(await round((i) => base.getString(name(i)), "awaited"));
      const started = performance.now();
      for (let i = 0; i < OPS * 20; i++) near.cache.peek(name(i));
      peekRounds.push((OPS * 20) / ((performance.now() - started) / 1000));
    }
    const peek = {
      plain: median(getRounds.slice(1)),
      mine: median(peekRounds.slice(1)),
      ratio: median(getRounds.slice(1).map((get, r) => get / peekRounds[r + 1]!)),
    };
    const mixed = await pair(
      (i) => base.getString(name(i)),
      (i) => near.getString(i % 10 === 9 ? `absent:${i}` : name(i)),
      "awaited",
    );
    for (
      const [operation, figures] of [
        ["NearCache.get, every read a hit", hit],
        ["NearCache.peek, synchronous", peek],
        ["NearCache.get, 90% hits", mixed],
      ] as const
    ) {
      rows.push({
        mode: "awaited",
        operation,
        "ops/s": Math.round(figures.mine),
        "time ×": `${figures.ratio.toFixed(3)} of GET (${against}): ${
          (1 / figures.ratio).toFixed(0)
        }× faster`,
      });
    }
    results.push({ mode: "awaited", client: `NearCache vs ${against}`, hit, peek, mixed });
  }
  await near.close();
  printTable(rows);
  console.log(`results: ${writeResults("redis-store", { server: server.version, results })}`);
  for (const peer of plain) await peer.close();
  await store.close();
} finally {
  await server.stop();
}
