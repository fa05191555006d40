import assert from "node:assert/strict";
import { createClient } from "redis";
import { Memalloc } from "../mod.ts";
import { NearCache } from "../redis/near_cache.ts";
import { RedisStore } from "../redis/store.ts";
import { type RedisServer, redisTest } from "./_redis.ts";
import { start, uniqueName } from "./_spawn.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it holds, for at most `ms`; returns how long it took. */
async function eventually(check: () => boolean, ms = 5_000, what = "condition"): Promise<number> {
  const started = Date.now();
  while (!check()) {
    if (Date.now() - started > ms) throw new Error(`${what} did not hold within ${ms} ms`);
    await sleep(2);
  }
  return Date.now() - started;
}

/** Writes through `remote` and waits until the cache's leader applied the invalidation. */
async function writeSettled(
  cache: NearCache,
  remote: RedisStore,
  name: string,
  value: unknown,
): Promise<void> {
  const before = cache.stats().invalidations;
  await remote.write(name, value);
  await eventually(() => cache.stats().invalidations > before, 2_000, "invalidation");
}

/** Settles a write or increment through the cache the same way. */
async function settled<T>(cache: NearCache, call: () => Promise<T>): Promise<T> {
  const before = cache.stats().invalidations;
  const result = await call();
  await eventually(() => cache.stats().invalidations > before, 2_000, "invalidation");
  return result;
}

/** A remote store and a near cache on a local store of its own; both removed afterwards. */
async function withCache(
  server: RedisServer,
  body: (cache: NearCache, remote: RedisStore, local: string) => Promise<void>,
  options?: Parameters<typeof NearCache.open>[2],
): Promise<void> {
  const local = uniqueName("near");
  const remote = await RedisStore.connect(server.url, uniqueName("near-remote"));
  const cache = await NearCache.open(local, remote, options);
  try {
    await body(cache, remote, local);
  } finally {
    cache.close();
    await remote.purge().catch(() => {});
    await remote.close();
    Memalloc.unlink(local);
    Memalloc.unlink(`${local}.near`);
  }
}

redisTest(
  "NearCache.get fetches once and answers from shared memory; writes go to Redis first",
  (server) =>
    withCache(server, async (cache, remote, local) => {
      assert.equal(cache.stats().leader, true, "the first process leads");
      await writeSettled(cache, remote, "a", { n: 1 });
      assert.equal(cache.peek("a"), undefined);
      assert.deepEqual(await cache.get("a"), { n: 1 });
      assert.deepEqual(cache.peek("a"), { n: 1 });
      assert.deepEqual(await cache.get("a"), { n: 1 });
      assert.deepEqual([cache.stats().hits, cache.stats().misses], [1, 1]);
      await settled(cache, () => cache.write("a", { n: 2 }));
      assert.deepEqual(await remote.read("a"), { n: 2 });
      assert.deepEqual(await cache.get("a"), { n: 2 });
      assert.equal(await settled(cache, () => cache.increment("count")), 1);
      assert.equal(await cache.get("count"), 1);
      assert.equal(await cache.delete("a"), true);
      assert.equal(await cache.get("a"), undefined);
      // Another handle on the same local store (another process of the machine) sees the copies.
      const second = await NearCache.open(local, remote);
      try {
        assert.equal(second.stats().leader, false, "one leader per machine");
        assert.equal(second.peek("count"), 1);
      } finally {
        second.close();
      }
      // A write by another client invalidates the copy.
      const other = await RedisStore.connect(server.url, remote.name);
      try {
        await other.write("count", 10);
        await eventually(() => cache.peek("count") === undefined, 2_000, "invalidation");
        assert.equal(await cache.get("count"), 10);
      } finally {
        await other.close();
      }
    }),
);

redisTest(
  "NearCache.peek stops serving copies the moment the leader closes, though its lease has time left",
  (server) =>
    withCache(server, async (cache, remote, local) => {
      await writeSettled(cache, remote, "a", "x");
      const follower = await NearCache.open(local, remote);
      try {
        assert.equal(await cache.get("a"), "x");
        assert.equal(follower.peek("a"), "x", "the follower serves the leader's copy");
        assert.equal(follower.peek("a"), "x", "from its cached look at the lease, too");
        cache.close(); // the leader resigns: nobody listens until the follower takes over
        assert.equal(follower.stats().watched, false);
        assert.equal(follower.peek("a"), undefined, "no copy is served unwatched");
        await eventually(() => follower.stats().watched, 5_000, "the follower leads");
        assert.equal(follower.peek("a"), undefined, "the new leader dropped the copies");
        assert.equal(await follower.get("a"), "x");
        assert.equal(follower.peek("a"), "x");
      } finally {
        follower.close();
      }
    }, { lease: 10_000 }),
);

redisTest(
  "NearCache copies have a bounded lifetime",
  (server) =>
    withCache(server, async (cache, remote) => {
      await writeSettled(cache, remote, "a", "x");
      assert.equal(await cache.get("a"), "x");
      assert.equal(cache.peek("a"), "x");
      await sleep(80);
      assert.equal(cache.peek("a"), undefined, "the copy expired");
    }, { ttl: 40 }),
);

redisTest(
  "NearCache drops a value fetched while its invalidation arrived",
  (server) =>
    withCache(server, async (cache, remote, local) => {
      await writeSettled(cache, remote, "r", "old");
      let release!: () => void;
      const gate = new Promise<void>((resolve) => release = resolve);
      let fetched = false;
      // The same store, with a read that is held after it has its (soon stale) reply.
      const slow = {
        read: async (name: string) => {
          const value = await remote.read(name);
          fetched = true;
          await gate;
          return value;
        },
        subscribe: (listener: (name: string | null) => void) => remote.subscribe(listener),
        get listening() {
          return remote.listening;
        },
      } as unknown as RedisStore;
      const reader = await NearCache.open(local, slow);
      try {
        const pending = reader.get("r");
        await eventually(() => fetched, 2_000, "fetch");
        const before = cache.stats().invalidations;
        const other = await RedisStore.connect(server.url, remote.name);
        try {
          await other.write("r", "new");
        } finally {
          await other.close();
        }
        await eventually(() => cache.stats().invalidations > before, 2_000, "invalidation");
        release();
        assert.equal(await pending, "old", "the fetch returns what it read");
        assert.equal(cache.peek("r"), undefined, "but does not keep it");
        assert.equal(await cache.get("r"), "new");
      } finally {
        reader.close();
      }
    }),
);

redisTest(
  "NearCache drops every copy when the invalidation connection is killed, then recovers",
  (server) =>
    withCache(server, async (cache, remote) => {
      await writeSettled(cache, remote, "a", 1);
      await writeSettled(cache, remote, "b", 2);
      assert.equal(await cache.get("a"), 1);
      assert.equal(await cache.get("b"), 2);
      const raw = createClient({ url: server.url, disableClientInfo: true });
      raw.on("error", () => {});
      await raw.connect();
      try {
        const killed = await raw.sendCommand(["CLIENT", "KILL", "TYPE", "pubsub"]);
        assert.ok(Number(killed) >= 1, `killed ${killed}`);
        const flushed = await eventually(
          () => cache.peek("a") === undefined && cache.peek("b") === undefined,
          2_000,
          "flush",
        );
        console.log(`copies dropped ${flushed} ms after the subscriber was killed`);
        // The client reconnects; the next election leads and listens again.
        await eventually(() => cache.stats().leader && remote.listening, 10_000, "re-election");
        assert.equal(await cache.get("a"), 1);
        assert.equal(cache.peek("a"), 1);
        await raw.sendCommand(["EVAL", "return 1", "0"]);
        const other = await RedisStore.connect(server.url, remote.name);
        try {
          await other.write("a", 3);
        } finally {
          await other.close();
        }
        await eventually(() => cache.peek("a") === undefined, 2_000, "invalidation after recovery");
      } finally {
        await raw.close();
      }
    }),
);

redisTest(
  "NearCache across two machines of processes of both runtimes: B reads A's writes fresh once invalidated, each invalidation applied once",
  async (server) => {
    const remoteName = uniqueName("near-remote");
    const localA = uniqueName("near-a");
    const localB = uniqueName("near-b");
    const remote = await RedisStore.connect(server.url, remoteName);
    const cacheA = await NearCache.open(localA, remote);
    const rounds = 30;
    const readers = (["deno", "bun"] as const).map((runtime) =>
      start(runtime, "_near_child.ts", ["reader", server.url, remoteName, localB, "k", `${rounds}`])
    );
    try {
      await remote.write("k", 0);
      for (const reader of readers) await reader.waitForLine((line) => line.includes("ready"));
      /** When a reader first saw `value` (its report's time, ms since the epoch). */
      const sawAt = async (reader: typeof readers[number], value: number) =>
        JSON.parse(
          await reader.waitForLine((line) => line.startsWith(`{"value":${value},`), 10_000),
        )
          .at as number;
      for (const reader of readers) await sawAt(reader, 0);
      const probe = Memalloc.open(`${localB}.near`, { create: false });
      const before = probe.read<number>("invalidations") ?? 0;
      const latencies: number[] = [];
      for (let i = 1; i <= rounds; i++) {
        await cacheA.write("k", i);
        const returned = Date.now();
        for (const reader of readers) latencies.push((await sawAt(reader, i)) - returned);
      }
      const results = await Promise.all(readers.map((reader) => reader.exited));
      for (const result of results) {
        assert.equal(result.code, 0, result.stderr);
        assert.ok(!result.stdout.includes("stale"), result.stdout);
      }
      const applied = (probe.read<number>("invalidations") ?? 0) - before;
      probe.close();
      latencies.sort((a, b) => a - b);
      console.log(
        `write's return to B's first fresh read: median ${latencies[latencies.length >> 1]} ms, ` +
          `max ${latencies.at(-1)} ms over ${latencies.length} reads; ${applied} invalidations ` +
          `applied on B for ${rounds} writes`,
      );
      assert.ok(applied >= rounds && applied < 2 * rounds, `applied ${applied} for ${rounds}`);
      const done = results.map((result) =>
        JSON.parse(result.stdout.trim().split("\n").at(-1)!) as { hits: number; misses: number }
      );
      for (const { hits, misses } of done) assert.ok(hits > misses, JSON.stringify(done));
    } finally {
      for (const reader of readers) reader.kill();
      cacheA.close();
      await remote.purge().catch(() => {});
      await remote.close();
      for (const name of [localA, localB]) {
        Memalloc.unlink(name);
        Memalloc.unlink(`${name}.near`);
      }
    }
  },
  { timeout: 120_000 },
);

redisTest(
  "NearCache hits run at memalloc read speed (reported, not asserted)",
  (server) =>
    withCache(server, async (cache, remote, local) => {
      await writeSettled(cache, remote, "hot", "v".repeat(100));
      await cache.get("hot");
      const plain = Memalloc.open(local, { create: false });
      try {
        const rate = (body: () => unknown, n: number) => {
          const started = performance.now();
          for (let i = 0; i < n; i++) body();
          return n / ((performance.now() - started) / 1000);
        };
        rate(() => cache.peek("hot"), 10_000);
        const peek = rate(() => cache.peek("hot"), 200_000);
        const read = rate(() => plain.read("hot"), 200_000);
        let started = performance.now();
        for (let i = 0; i < 2_000; i++) await remote.read("hot");
        const remoteRate = 2_000 / ((performance.now() - started) / 1000);
        started = performance.now();
        for (let i = 0; i < 20_000; i++) await cache.get("hot");
        const get = 20_000 / ((performance.now() - started) / 1000);
        console.log(
          `peek ${Math.round(peek)}/s, Memalloc.read ${Math.round(read)}/s, get (hit) ` +
            `${Math.round(get)}/s, RedisStore.read ${Math.round(remoteRate)}/s: peek is ` +
            `${(peek / remoteRate).toFixed(0)}× a round trip`,
        );
        assert.equal(cache.peek("hot"), "v".repeat(100));
      } finally {
        plain.close();
      }
    }),
);

redisTest(
  "NearCache: when the leader process is killed, another takes over within a lease and drops the copies",
  async (server) => {
    const remoteName = uniqueName("near-remote");
    const local = uniqueName("near-failover");
    const remote = await RedisStore.connect(server.url, remoteName);
    const leader = start("bun", "_near_child.ts", ["lead", server.url, remoteName, local]);
    try {
      const ready = JSON.parse(await leader.waitForLine((line) => line.includes("ready")));
      assert.equal(ready.leader, true);
      const cache = await NearCache.open(local, remote, { lease: 400 });
      try {
        assert.equal(cache.stats().leader, false);
        await remote.write("a", 1);
        await sleep(50);
        assert.equal(await cache.get("a"), 1);
        assert.equal(cache.peek("a"), 1, "the other process's lease covers this one's copies");
        leader.kill("SIGKILL");
        await leader.exited;
        const took = await eventually(() => cache.stats().leader, 3_000, "take-over");
        console.log(`took over ${took} ms after the leader was killed (lease 400 ms)`);
        assert.equal(cache.peek("a"), undefined, "the new leader dropped the copies");
        // The lease is taken before the subscription is made: copies are kept once it listens.
        await eventually(() => cache.stats().watched, 3_000, "the new leader listening");
        await writeSettled(cache, remote, "a", 2);
        assert.equal(await cache.get("a"), 2);
        assert.equal(cache.peek("a"), 2);
      } finally {
        cache.close();
      }
    } finally {
      leader.kill();
      await remote.purge().catch(() => {});
      await remote.close();
      Memalloc.unlink(local);
      Memalloc.unlink(`${local}.near`);
    }
  },
  { timeout: 60_000 },
);
