import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createClient } from "redis";
import { encodeValue } from "../allocator/codec.ts";
import { Memalloc, MemallocError } from "../mod.ts";
import { RedisStore } from "../redis/store.ts";
import { test } from "./_harness.ts";
import { type RedisServer, redisTest, startRedisServer } from "./_redis.ts";
import { run, RUNTIMES, uniqueName } from "./_spawn.ts";
import { sampleValues } from "./_values.ts";

const lastJson = (stdout: string) => JSON.parse(stdout.trim().split("\n").at(-1)!);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A plain client, to look at the keys as the server has them. */
async function rawClient(server: RedisServer) {
  const client = createClient({ url: server.url, disableClientInfo: true });
  client.on("error", () => {});
  await client.connect();
  return client;
}

/** Connects to a fresh store for one test; purges it and closes afterwards. */
async function withStore(
  server: RedisServer,
  body: (store: RedisStore, name: string) => Promise<void>,
  options?: Parameters<typeof RedisStore.connect>[2],
): Promise<void> {
  const name = uniqueName("redis");
  const store = await RedisStore.connect(server.url, name, options);
  try {
    await body(store, name);
  } finally {
    await store.purge().catch(() => {});
    await store.close();
  }
}

redisTest(
  "RedisStore runs the seed example: write, read, delete, clean, purge",
  (server) =>
    withStore(server, async (store, name) => {
      const other = await RedisStore.connect(server.url, uniqueName("redis-other"));
      try {
        await other.write("greeting", "someone else's");
        await store.write("greeting", "Foobar");
        await store.write("greeting", (await store.read<string>("greeting")) + "123");
        assert.equal(await store.read("greeting"), "Foobar123");
        assert.equal(await store.has("greeting"), true);
        assert.equal(await store.delete("greeting"), true);
        assert.equal(await store.delete("greeting"), false);
        assert.equal(await store.read("greeting"), undefined);
        await store.write("a", 1);
        await store.write("b", 2);
        assert.equal(await store.clean(), 0, "nothing to clean below the watermark");
        assert.equal(await store.purge(), 2);
        assert.deepEqual(await store.keys(), []);
        const stats = await store.stats();
        assert.equal(stats.entries, 0);
        assert.equal(stats.bytesUsed, 0);
        assert.equal(stats.name, name);
        assert.equal(await other.read("greeting"), "someone else's", "purge is of one store only");
        const raw = await rawClient(server);
        try {
          const keys = await raw.keys(`memalloc:{${name}}:*`);
          assert.deepEqual(keys.sort(), [`memalloc:{${name}}:meta`], "only the settings are left");
        } finally {
          await raw.close();
        }
      } finally {
        await other.purge();
        await other.close();
      }
    }),
);

redisTest(
  'RedisStore stores every value kind as a Memalloc handle with objects: "json" does: the same kind, bytes and value',
  (server) =>
    withStore(server, async (store) => {
      const local = uniqueName("redis-local");
      // Redis has no table of record structures: objects are JSON text there.
      using memalloc = Memalloc.open(local, { maxMemory: 4 << 20, objects: "json" });
      const raw = await rawClient(server);
      try {
        for (const [key, value] of Object.entries(sampleValues())) {
          await store.write(key, value);
          memalloc.write(key, value);
          assert.deepStrictEqual(await store.read(key), value, key);
          const info = (await store.info(key))!;
          const localInfo = memalloc.info(key)!;
          assert.equal(info.kind, localInfo.kind, key);
          assert.equal(info.size, localInfo.size, key);
          const stored = await raw.withTypeMapping({ [36]: Buffer } as never).get(
            `memalloc:{${store.name}}:e:${key}`,
          ) as unknown as Buffer;
          const encoded = encodeValue(value);
          assert.deepEqual(new Uint8Array(stored.subarray(38)), new Uint8Array(encoded.bytes), key);
          assert.equal(stored[1], encoded.kind, key);
        }
        for (const value of [0, -0, 2 ** 53, 5e-324, NaN, -Infinity, Number.MAX_VALUE]) {
          await store.write("n", value);
          assert.ok(Object.is(await store.read("n"), value), String(value));
        }
        const bytes = (await store.read<Uint8Array>("bytes"))!;
        assert.equal(bytes.constructor, Uint8Array, "bytes come back as a plain Uint8Array");
      } finally {
        await raw.close();
        Memalloc.unlink(local);
      }
    }),
);

redisTest(
  "RedisStore evicts the oldest-written entries down to the watermark once bytes pass maxMemory",
  (server) =>
    withStore(server, async (store) => {
      assert.equal(store.maxMemory, 1000);
      // Each entry counts 100 bytes: a 2-byte name and 98 bytes of value.
      for (let i = 0; i < 10; i++) await store.write(`e${i}`, "x".repeat(98));
      assert.equal((await store.stats()).bytesUsed, 1000);
      assert.equal((await store.keys()).length, 10, "at maxMemory, not past it: nothing evicted");
      await store.write("e0", "y".repeat(98)); // rewritten: now the newest
      await store.write("f0", "z".repeat(98)); // 1100 bytes: down to 500
      assert.deepEqual(await store.keys(), ["e7", "e8", "e9", "e0", "f0"]);
      const stats = await store.stats();
      assert.equal(stats.bytesUsed, 500);
      assert.equal(stats.evictions, 6);
      assert.equal(await store.read("e0"), "y".repeat(98));
      // clean() brings it to the watermark on demand, expired entries first.
      await store.write("t1", "x".repeat(198), { ttl: 30 }); // 700 bytes
      await sleep(60);
      assert.equal(
        await store.clean(),
        1,
        "only the expired entry goes: 500 bytes is the watermark",
      );
      assert.equal((await store.stats()).bytesUsed, 500);
      await assert.rejects(store.write("big", "x".repeat(1000)), RangeError);
      assert.equal((await store.stats()).bytesUsed, 500, "a value too large evicts nothing");
    }, { maxMemory: 1000, autoclean: 0.5 }),
);

redisTest(
  "RedisStore TTLs expire on the server: never served stale, and the byte counter follows",
  (server) =>
    withStore(server, async (store, name) => {
      const raw = await rawClient(server);
      try {
        await store.write("session", { user: "ada" }, { ttl: 150 });
        await store.write("kept", "k");
        const pttl = await raw.pTTL(`memalloc:{${name}}:e:session`);
        assert.ok(pttl > 0 && pttl <= 150, `the server's own expiry (PTTL ${pttl})`);
        const info = (await store.info("session"))!;
        assert.ok(info.expires !== null && info.expires > info.written);
        assert.deepEqual(await store.read("session"), { user: "ada" });
        await sleep(200);
        assert.equal(await store.read("session"), undefined);
        assert.equal(await store.has("session"), false);
        assert.equal(await store.info("session"), undefined);
        assert.deepEqual(await store.keys(), ["kept"]);
        const stats = await store.stats();
        assert.equal(stats.entries, 1, "the expired entry's accounting is settled");
        assert.equal(stats.bytesUsed, "kept".length + 1);
        assert.equal(stats.expired, 1);
        // Expired, not yet reaped: add takes the name, and the size is counted once.
        await store.write("short", "x".repeat(10), { ttl: 20 });
        await sleep(50);
        assert.equal(await store.add("short", "again"), true);
        assert.equal((await store.stats()).bytesUsed, 4 + 1 + 5 + 5);
        // A handle's default ttl; increment keeps an entry's expiry.
        const timed = await RedisStore.connect(server.url, name, { ttl: 100 });
        try {
          await timed.increment("window");
          const first = (await timed.info("window"))!.expires!;
          await timed.increment("window");
          assert.equal((await timed.info("window"))!.expires, first);
          await timed.write("forever", 1, { ttl: 0 });
          assert.equal((await timed.info("forever"))!.expires, null);
        } finally {
          await timed.close();
        }
      } finally {
        await raw.close();
      }
    }),
);

redisTest(
  "RedisStore keeps its byte counter equal to its live entries through expiry, eviction and deletes",
  (server) =>
    withStore(server, async (store, name) => {
      let seed = 42;
      const random = (n: number) =>
        Math.floor((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 16) % n;
      for (let i = 0; i < 1500; i++) {
        const key = `k${random(40)}`;
        const op = random(10);
        if (op < 4) await store.write(key, "x".repeat(random(120)));
        else if (op < 7) await store.write(key, "y".repeat(random(80)), { ttl: 1 + random(20) });
        else if (op < 8) await store.increment(key).catch(() => {});
        else if (op < 9) await store.delete(key);
        else await sleep(1);
      }
      await sleep(40); // every TTL has passed: the server has expired those entries on its own
      const stats = await store.stats();
      let live = 0;
      let count = 0;
      for await (const entry of store.list()) {
        live += entry.size + entry.name.length;
        count++;
      }
      assert.equal(stats.bytesUsed, live);
      assert.equal(stats.entries, count);
      assert.ok(stats.bytesUsed <= store.maxMemory);
      assert.ok(stats.evictions > 0 && stats.expired > 0, JSON.stringify(stats));
      const raw = await rawClient(server);
      try {
        assert.equal(await raw.zCard(`memalloc:{${name}}:exp`), 0, "no expiry left to reap");
        assert.equal(await raw.hLen(`memalloc:{${name}}:size`), 0);
      } finally {
        await raw.close();
      }
    }, { maxMemory: 2000 }),
);

redisTest(
  "RedisStore.increment from 4 processes of every runtime at once is exact",
  async (server) => {
    const name = uniqueName("redis-incr");
    const store = await RedisStore.connect(server.url, name);
    try {
      const at = Date.now() + 2_500;
      const runtimes = [...RUNTIMES, "deno" as const];
      const results = await Promise.all(
        runtimes.map((runtime) =>
          run(runtime, "_redis_child.ts", ["increment", server.url, name, "500", `${at}`])
        ),
      );
      for (const result of results) assert.equal(lastJson(result.stdout).done, 500);
      assert.equal(await store.read("counter"), 2_000);
      assert.equal(await store.increment("big", 1, { initial: 2 ** 53 - 2 }), 2 ** 53 - 1);
      assert.equal(await store.increment("half", 0.25), 0.25);
      assert.equal(await store.increment("stock", -1, { initial: 10 }), 9);
      assert.equal(await store.increment("stock", 1, { initial: 100 }), 10);
    } finally {
      await store.purge();
      await store.close();
    }
  },
  { timeout: 120_000 },
);

redisTest(
  "RedisStore.add raced by processes of every runtime, and ifVersion by 8 connections: one wins",
  async (server) => {
    const name = uniqueName("redis-race");
    const store = await RedisStore.connect(server.url, name);
    try {
      const at = Date.now() + 2_500;
      const runtimes = [...RUNTIMES, ...RUNTIMES];
      const results = await Promise.all(
        runtimes.map((runtime, i) =>
          run(runtime, "_redis_child.ts", ["add", server.url, name, `${at}`, `child-${i}`])
        ),
      );
      const won = results.map((result) => lastJson(result.stdout).won as boolean);
      assert.equal(won.filter(Boolean).length, 1, JSON.stringify(won));
      assert.equal(await store.read("winner"), `child-${won.indexOf(true)}`);

      await store.write("doc", "v0");
      const { version } = (await store.info("doc"))!;
      const clients = await Promise.all(
        Array.from({ length: 8 }, () => RedisStore.connect(server.url, name)),
      );
      try {
        const wrote = await Promise.all(
          clients.map((client, i) => client.write("doc", `by-${i}`, { ifVersion: version })),
        );
        assert.equal(wrote.filter(Boolean).length, 1);
        assert.equal(await store.read("doc"), `by-${wrote.indexOf(true)}`);
        const created = await Promise.all(
          clients.map((client, i) => client.write("fresh", i, { ifVersion: null })),
        );
        assert.equal(created.filter(Boolean).length, 1);
        assert.equal(await store.write("doc", "stale", { ifVersion: version }), false);
        assert.equal(await store.delete("doc", { ifVersion: version }), false);
        const now = (await store.info("doc"))!.version;
        assert.ok(now > version);
        assert.equal(await store.delete("doc", { ifVersion: now }), true);
        assert.equal(
          await store.write("c", "x", { ifVersion: 0 }),
          false,
          "no entry has version 0",
        );
      } finally {
        await Promise.all(clients.map((client) => client.close()));
      }
    } finally {
      await store.purge();
      await store.close();
    }
  },
  { timeout: 120_000 },
);

redisTest(
  "RedisStore.update from processes of every runtime at once loses no update",
  async (server) => {
    const name = uniqueName("redis-update");
    const store = await RedisStore.connect(server.url, name);
    try {
      const results = await Promise.all(
        RUNTIMES.map((runtime) =>
          run(runtime, "_redis_child.ts", ["update", server.url, name, "20", runtime])
        ),
      );
      for (const result of results) assert.equal(lastJson(result.stdout).done, 20);
      const log = (await store.read<string[]>("log"))!;
      assert.equal(log.length, 60);
      for (const runtime of RUNTIMES) {
        assert.equal(log.filter((id) => id === runtime).length, 20, runtime);
      }
      assert.equal(await store.update("log", () => undefined), undefined, "undefined deletes");
      assert.equal(await store.has("log"), false);
      await assert.rejects(
        store.update("x", () => {
          throw new Error("boom");
        }),
        /boom/,
      );
      assert.equal(await store.has("x"), false);
    } finally {
      await store.purge();
      await store.close();
    }
  },
  { timeout: 120_000 },
);

redisTest(
  "RedisStore keys, entries and list walk in write order, by prefix, up to a limit",
  (server) =>
    withStore(server, async (store) => {
      await store.write("session:1", "a");
      await store.write("user:1", new Uint8Array(7));
      await store.write("session:2", { b: 2 });
      await store.increment("session:3");
      assert.deepEqual(await store.keys({ prefix: "session:" }), [
        "session:1",
        "session:2",
        "session:3",
      ]);
      assert.deepEqual(await store.keys({ limit: 2 }), ["session:1", "user:1"]);
      const entries: Array<[string, unknown]> = [];
      for await (const entry of store.entries({ prefix: "session:" })) entries.push(entry);
      assert.deepEqual(entries, [["session:1", "a"], ["session:2", { b: 2 }], ["session:3", 1]]);
      const listed = [];
      for await (const entry of store.list()) listed.push(entry);
      assert.deepEqual(listed.map((entry) => entry.kind), ["string", "bytes", "json", "number"]);
      for (const { name, ...info } of listed) assert.deepEqual(info, await store.info(name));
      for (let i = 0; i < 700; i++) await store.write(`many:${i}`, i);
      const many = await store.keys({ prefix: "many:" });
      assert.equal(many.length, 700, "more than one chunk");
      assert.equal(many[699], "many:699");
    }),
);

redisTest(
  "RedisStore.watch yields the state, then each write, delete, eviction, purge and expiry",
  (server) =>
    withStore(server, async (store, name) => {
      const writer = await RedisStore.connect(server.url, name);
      const controller = new AbortController();
      try {
        const seen: Array<Array<number | null>> = [];
        const values: unknown[] = [];
        const watching = (async () => {
          for await (const state of store.watch(["a", "b"], { signal: controller.signal })) {
            seen.push(state.map((entry) => entry.version));
            values.push(state[0]!.value);
          }
        })();
        const waitFor = async (count: number) => {
          const deadline = Date.now() + 5_000;
          while (seen.length < count && Date.now() < deadline) await sleep(5);
          assert.equal(seen.length, count, JSON.stringify(seen));
        };
        await waitFor(1);
        assert.deepEqual(seen[0], [null, null]);
        await writer.write("a", "one");
        await waitFor(2);
        assert.equal(values[1], "one");
        await writer.write("other", "x"); // not watched: no item
        await writer.write("b", 2, { ttl: 200 });
        await waitFor(3);
        await writer.delete("a");
        await waitFor(4);
        assert.equal(seen[3]![0], null);
        await sleep(250); // b expires on the server: the watch re-reads at its expiry
        await waitFor(5);
        assert.deepEqual(seen[4], [null, null]);
        await writer.write("a", "again");
        await waitFor(6);
        await writer.purge();
        await waitFor(7);
        assert.deepEqual(seen[6], [null, null]);
        controller.abort();
        await watching;
        assert.throws(() => store.watch("a" as never), TypeError);
        assert.throws(() => store.watch([""]), TypeError);
        assert.throws(() => store.watch(["a"], { signal: {} as never }), TypeError);
      } finally {
        controller.abort();
        await writer.close();
      }
    }, { maxMemory: 1000 }),
);

redisTest(
  "RedisStore refuses bad input with Memalloc's errors before sending anything",
  (server) =>
    withStore(server, async (store) => {
      await store.write("kept", "value");
      await store.write("text", "12");
      const before = await store.stats();
      const cases: Array<[() => Promise<unknown>, ErrorConstructor, RegExp]> = [
        [() => store.write("", 1), TypeError, /Entry name must not be empty/],
        [() => store.write(1 as never, 1), TypeError, /Entry name must be a string/],
        [() => store.write("x".repeat(251), 1), RangeError, /the limit is 250/],
        [() => store.write("a", undefined), TypeError, /Cannot store/],
        [() => store.write("a", () => 1), TypeError, /Cannot store/],
        [() => store.write("a", "\ud800"), TypeError, /lone surrogate/],
        [() => store.write("a", 1, { ifVersion: "1" as never }), TypeError, /ifVersion/],
        [() => store.write("a", 1, { ifVersion: -1 }), RangeError, /ifVersion/],
        [() => store.write("a", 1, { ttl: -1 }), RangeError, /ttl of write/],
        [() => store.write("a", 1, { tll: 1 } as never), TypeError, /Unknown option "tll"/],
        [() => store.delete("a", { ifVersion: null as never }), TypeError, /ifVersion/],
        [() => store.increment("n", "1" as never), TypeError, /delta must be a number, got "1"/],
        [() => store.increment("n", NaN), RangeError, /delta must be finite, got NaN/],
        [() => store.increment("n", 1, { initial: Infinity }), RangeError, /initial/],
        [() => store.increment("text"), TypeError, /holds a value that is not a number/],
        [() => store.update("a", 1 as never), TypeError, /change must be a function/],
        [() => store.keys({ limit: -1 }), RangeError, /limit of keys/],
        [() => store.keys({ prefix: 1 as never }), TypeError, /prefix of keys/],
        [() => store.add("a", Symbol("s")), TypeError, /Cannot store/],
      ];
      for (const [call, type, message] of cases) {
        await assert.rejects(call(), (error: unknown) => {
          assert.ok(error instanceof type, `${error}`);
          assert.match((error as Error).message, message);
          return true;
        });
      }
      await store.write("max", Number.MAX_VALUE);
      await assert.rejects(store.increment("max", Number.MAX_VALUE), {
        name: "RangeError",
        message: `Cannot increment "max": the result Infinity is not a finite number`,
      });
      assert.equal(await store.read("max"), Number.MAX_VALUE);
      assert.equal(await store.read("text"), "12");
      const after = await store.stats();
      assert.equal(after.writes, before.writes + 1, "only the write of max was applied");
      assert.deepEqual(await store.keys(), ["kept", "text", "max"]);
      await assert.rejects(RedisStore.connect(server.url, "a{b}"), TypeError);
      await assert.rejects(RedisStore.connect(server.url, "s", { maxMemory: 1.5 }), TypeError);
      await assert.rejects(RedisStore.connect(server.url, "s", { autoclean: 2 }), RangeError);
      await assert.rejects(RedisStore.connect(server.url, "s", { size: 1 } as never), TypeError);
    }),
);

redisTest(
  "RedisStore reports a lost connection per call as ERR_MEMALLOC_REMOTE, then reconnects",
  async (server) => {
    const name = uniqueName("redis-loss");
    const store = await RedisStore.connect(server.url, name);
    let restarted: RedisServer | undefined;
    try {
      await store.write("a", 1);
      const inFlight = Array.from({ length: 200 }, (_, i) => store.write(`k${i}`, i));
      process.kill(server.pid, "SIGKILL");
      const settled = await Promise.allSettled(inFlight);
      for (const result of settled) {
        if (result.status === "rejected") {
          assert.ok(result.reason instanceof MemallocError);
          assert.equal(result.reason.code, "ERR_MEMALLOC_REMOTE");
        }
      }
      await sleep(100);
      const started = Date.now();
      await assert.rejects(store.read("a"), (error: unknown) => {
        assert.ok(error instanceof MemallocError);
        assert.equal(error.code, "ERR_MEMALLOC_REMOTE");
        assert.equal(error.store, name);
        assert.match(error.message, new RegExp(`Cannot read in store "${name}" on redis://`));
        assert.ok(error.cause !== undefined);
        return true;
      });
      assert.ok(Date.now() - started < 1_000, "fails at once, without waiting for the server");
      await assert.rejects(store.increment("n"), { code: "ERR_MEMALLOC_REMOTE" });
      restarted = await startAgain(server.port);
      const deadline = Date.now() + 10_000;
      let ok = false;
      while (!ok && Date.now() < deadline) {
        ok = await store.write("b", 2).then(() => true, () => false);
        if (!ok) await sleep(50);
      }
      assert.ok(ok, "the client reconnects");
      assert.equal(await store.read("b"), 2);
      assert.equal((await store.stats()).capacity, store.maxMemory, "settings made again");
    } finally {
      await store.close();
      await restarted?.stop();
    }
    await assert.rejects(store.read("a"), { code: "ERR_MEMALLOC_CLOSED" });
    await store.close();
  },
  { timeout: 60_000 },
);

/** A new redis-server on the port of one that was killed. */
function startAgain(port: number): Promise<RedisServer> {
  return startRedisServer({ port });
}

test("RedisStore.connect to no server fails with ERR_MEMALLOC_REMOTE within connectTimeout", async () => {
  const started = Date.now();
  await assert.rejects(
    RedisStore.connect("redis://user:secret@127.0.0.1:1", uniqueName("redis-none"), {
      connectTimeout: 300,
    }),
    (error: unknown) => {
      assert.ok(error instanceof MemallocError);
      assert.equal(error.code, "ERR_MEMALLOC_REMOTE");
      assert.match(error.message, /Cannot connect to redis:\/\/127\.0\.0\.1:1 for store/);
      assert.ok(!error.message.includes("secret"), "no password in the message");
      return true;
    },
  );
  assert.ok(Date.now() - started < 3_000);
});

redisTest(
  "RedisStore.connect takes a connected node-redis client, shares it and leaves it open",
  async (server) => {
    const raw = await rawClient(server);
    const name = uniqueName("redis-client");
    try {
      const store = await RedisStore.connect(raw as never, name, { maxMemory: 1 << 20 });
      await store.write("bytes", new Uint8Array([0, 255, 7]));
      assert.deepEqual(await store.read("bytes"), new Uint8Array([0, 255, 7]));
      assert.equal(await store.increment("n", 2), 2);
      const seen: Array<string | null> = [];
      const stop = await store.subscribe((changed) => seen.push(changed));
      await store.write("x", 1);
      const deadline = Date.now() + 2_000;
      while (!seen.includes("x") && Date.now() < deadline) await sleep(5);
      assert.ok(seen.includes("x"), JSON.stringify(seen));
      stop();
      await store.purge();
      await store.close();
      assert.equal(await raw.ping(), "PONG", "the client given stays open");
      await assert.rejects(store.read("bytes"), { code: "ERR_MEMALLOC_CLOSED" });
    } finally {
      await raw.close();
    }
    await assert.rejects(RedisStore.connect(raw as never, name), { code: "ERR_MEMALLOC_REMOTE" });
    await assert.rejects(RedisStore.connect({} as never, name), TypeError);
  },
);
