/**
 * Objects at in-process speed: frozen reads (`read(name, { frozen: true })`) and their decode
 * cache (deep freezing, one decoded object shared while the entry keeps its version, and a
 * fresh decode the very next read after any change, made by this process or by another of any
 * runtime); values stored as JSON text, and `readJson`, which hands the text on as it is.
 */
import assert from "node:assert/strict";
import { Memalloc } from "../mod.ts";
import { DecodeCache, deepFreeze } from "../frozen.ts";
import { SEG_VERSION, ST_RECORDS } from "../allocator/layout.ts";
import { Segment } from "../ffi/segment.ts";
import { test } from "./_harness.ts";
import { run, RUNTIMES, start, uniqueName } from "./_spawn.ts";

const MiB = 1 << 20;

function withStore(
  body: (store: Memalloc, name: string) => void | Promise<void>,
  options: Parameters<typeof Memalloc.open>[1] = { maxMemory: MiB },
): () => Promise<void> {
  return async () => {
    const name = uniqueName("frozen");
    try {
      using store = Memalloc.open(name, options);
      await body(store, name);
    } finally {
      Memalloc.unlink(name);
    }
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test(
  "Memalloc.read frozen returns one deeply frozen object while the entry is unchanged; a plain read a fresh copy",
  withStore((store) => {
    const value = {
      user: { name: "Ada", roles: ["admin", { scope: "all" }] },
      seen: new Date(0),
      prefs: new Map<string, unknown>([["theme", { dark: true }]]),
      tags: new Set([["x"]]),
    };
    store.write("session", value);
    const first = store.read<typeof value>("session", { frozen: true })!;
    assert.deepEqual(first, value);
    assert.equal(store.read("session", { frozen: true }), first, "the cached object");
    for (const part of [first, first.user, first.user.roles, first.user.roles[1], first.seen]) {
      assert.ok(Object.isFrozen(part), `${JSON.stringify(part)} is frozen`);
    }
    assert.ok(Object.isFrozen(first.prefs.get("theme")), "a Map's values are frozen");
    assert.ok(Object.isFrozen([...first.tags][0]), "a Set's items are frozen");
    assert.throws(() => {
      (first.user as { name: string }).name = "Eve";
    }, TypeError);
    assert.throws(() => first.user.roles.push("root"), TypeError);
    assert.throws(() => first.prefs.set("theme", 1), /Cannot change a value read with/);
    assert.throws(() => first.prefs.delete("theme"), TypeError);
    assert.throws(() => first.tags.add(["y"]), TypeError);
    assert.throws(() => first.tags.clear(), TypeError);
    assert.throws(() => first.seen.setTime(5), TypeError);
    assert.throws(() => first.seen.setFullYear(2000), TypeError);
    assert.equal(first.seen.getTime(), 0);
    assert.equal(first.prefs.size, 1);
    // A plain read is still a mutable copy of its own.
    const copy = store.read<typeof value>("session")!;
    assert.notEqual(copy, first);
    copy.user.name = "Eve";
    copy.prefs.set("theme", 1);
    assert.equal(store.read<typeof value>("session", { frozen: true })!.user.name, "Ada");
  }),
);

test(
  "Memalloc.read frozen decodes anew after this handle writes, deletes, purges, or the entry expires or is evicted",
  withStore(async (store) => {
    store.write("a", { n: 1 });
    const one = store.read("a", { frozen: true });
    store.write("a", { n: 1 }); // an equal value, a new version: decoded again
    const again = store.read("a", { frozen: true });
    assert.notEqual(again, one);
    assert.deepEqual(again, { n: 1 });
    assert.deepEqual(store.update<{ n: number }>("a", (old) => ({ n: old!.n + 1 })), { n: 2 });
    assert.deepEqual(store.read("a", { frozen: true }), { n: 2 });
    assert.equal(store.increment("count", 1), 1);
    assert.equal(store.read("count", { frozen: true }), 1);
    assert.equal(store.increment("count", 1), 2);
    assert.equal(store.read("count", { frozen: true }), 2);
    store.delete("a");
    assert.equal(store.read("a", { frozen: true }), undefined);
    store.write("a", { n: 3 });
    assert.deepEqual(store.read("a", { frozen: true }), { n: 3 });
    store.purge();
    assert.equal(store.read("a", { frozen: true }), undefined);
    // Expiry: gone for the frozen read from the instant it expires.
    store.write("short", { s: true }, { ttl: 60 });
    assert.deepEqual(store.read("short", { frozen: true }), { s: true });
    await sleep(80);
    assert.equal(store.read("short", { frozen: true }), undefined);
    // Eviction: the oldest entry goes when the store fills up; its cached copy goes with it.
    store.write("oldest", { big: "x".repeat(1000) });
    assert.ok(store.read("oldest", { frozen: true }));
    const filler = "y".repeat(4000);
    for (let i = 0; store.has("oldest"); i++) store.write(`fill:${i}`, filler);
    assert.equal(store.read("oldest", { frozen: true }), undefined);
    assert.ok(store.stats().evictions > 0);
  }),
);

test(
  "Memalloc.read frozen: strings are cached, bytes and objects holding typed arrays are fresh copies",
  withStore((store) => {
    store.write("text", "é".repeat(300));
    const text = store.read("text", { frozen: true });
    assert.equal(text, "é".repeat(300));
    assert.equal(store.read("text", { frozen: true }), text);
    store.write("bytes", new Uint8Array([1, 2, 3]));
    const bytes = store.read<Uint8Array>("bytes", { frozen: true })!;
    assert.notEqual(store.read("bytes", { frozen: true }), bytes, "a copy each time");
    bytes[0] = 9; // its own copy: the store and later reads keep 1
    assert.deepEqual([...store.read<Uint8Array>("bytes", { frozen: true })!], [1, 2, 3]);
    store.write("mixed", { pixels: new Uint16Array([7]), label: "p" });
    const mixed = store.read<{ pixels: Uint16Array; label: string }>("mixed", { frozen: true })!;
    assert.notEqual(store.read("mixed", { frozen: true }), mixed, "not shared: not cached");
    mixed.pixels[0] = 8;
    assert.equal(
      store.read<{ pixels: Uint16Array }>("mixed", { frozen: true })!.pixels[0],
      7,
    );
    assert.equal(store.read("missing", { frozen: true }), undefined);
  }),
);

test(
  "Memalloc.read frozen sees a write, delete or purge by another process of each runtime at the very next read",
  withStore(async (store, name) => {
    for (const runtime of RUNTIMES) {
      store.write("shared", { from: "parent" });
      const before = store.read("shared", { frozen: true });
      assert.deepEqual(before, { from: "parent" });
      await run(runtime, "_cache_child.ts", [
        "write-json",
        name,
        "shared",
        JSON.stringify({ from: runtime }),
      ]);
      assert.deepEqual(store.read("shared", { frozen: true }), { from: runtime }, runtime);
      const cached = store.read("shared", { frozen: true });
      assert.equal(store.read("shared", { frozen: true }), cached);
      await run(runtime, "_cache_child.ts", ["delete-name", name, "shared"]);
      assert.equal(store.read("shared", { frozen: true }), undefined, `${runtime} deleted it`);
      store.write("other", [runtime]);
      assert.deepEqual(store.read("other", { frozen: true }), [runtime]);
      await run(runtime, "_cache_child.ts", ["purge", name]);
      assert.equal(store.read("other", { frozen: true }), undefined, `${runtime} purged`);
    }
  }),
);

test(
  "Memalloc.read frozen never returns a torn or stale value while another process overwrites the entry",
  withStore(async (store, name) => {
    store.write("pair", { a: 0, b: [0, 0], pad: "" });
    const writer = start(RUNTIMES[1], "_cache_child.ts", [
      "overwrite-pairs",
      name,
      "pair",
      "20000",
    ]);
    await writer.waitForLine((line) => line.includes("ready"));
    let last = 0;
    let reads = 0;
    let finished = false;
    writer.exited.then(() => (finished = true));
    while (!finished) {
      const value = store.read<{ a: number; b: number[] }>("pair", { frozen: true })!;
      assert.equal(value.b[0], value.a);
      assert.equal(value.b[1], value.a);
      assert.ok(value.a >= last, `went back from ${last} to ${value.a}`);
      last = value.a;
      reads++;
      if ((reads & 255) === 0) await sleep(0); // let the exit be noticed
    }
    const result = await writer.exited;
    assert.equal(result.code, 0, result.stderr);
    assert.ok(reads > 0 && last > 0, `${reads} reads, the last of value ${last}`);
    assert.equal(store.read<{ a: number }>("pair", { frozen: true })!.a, 20000);
  }),
);

test(
  "Memalloc.read frozen keeps the decode cache within its bounds; entries 0 turns it off",
  () => {
    const name = uniqueName("frozen-bound");
    try {
      {
        using store = Memalloc.open(name, {
          maxMemory: 64 * MiB,
          decodeCache: { entries: 100, bytes: 1 << 30 },
        });
        for (let i = 0; i < 20_000; i++) store.write(`k:${i}`, { i });
        for (let i = 0; i < 20_000; i++) {
          assert.deepEqual(store.read(`k:${i}`, { frozen: true }), { i });
        }
        // The last 100 are cached, the first long gone (decoded again: another object).
        const recent = store.read("k:19999", { frozen: true });
        assert.equal(store.read("k:19999", { frozen: true }), recent);
        const old = store.read("k:0", { frozen: true });
        assert.deepEqual(old, { i: 0 });
      }
      {
        using store = Memalloc.open(name, { decodeCache: { entries: 0 } });
        const a = store.read("k:1", { frozen: true });
        assert.ok(Object.isFrozen(a));
        assert.notEqual(store.read("k:1", { frozen: true }), a);
      }
    } finally {
      Memalloc.unlink(name);
    }
  },
);

test("DecodeCache stays within its entry and byte bounds over 1,000,000 distinct names", () => {
  const cache = new DecodeCache({ entries: 1000, bytes: 50_000 });
  for (let i = 0; i < 1_000_000; i++) {
    cache.set(`name:${i}`, i, i, 10 + (i % 100));
    if (cache.size > 1000 || cache.bytes > 50_000) {
      assert.fail(`after ${i + 1} names: ${cache.size} values, ${cache.bytes} bytes`);
    }
    if ((i & 7) === 0) cache.hit(cache.get(`name:${i}`)!); // read again: a second chance
  }
  assert.ok(cache.size > 0);
  assert.equal(cache.version("name:999999"), 999999);
  assert.equal(cache.version("name:0"), -1);
  const big = new DecodeCache({ entries: 10, bytes: 100 });
  big.set("huge", 1, "v", 101); // bigger than the whole cache: not kept
  assert.equal(big.size, 0);
  big.set("a", 1, "v", 60);
  big.set("b", 2, "v", 60); // a goes to make room
  assert.deepEqual([big.version("a"), big.version("b"), big.bytes], [-1, 2, 60]);
});

test("deepFreeze freezes cycles and shared parts once, and reports typed arrays", () => {
  const shared = { x: 1 };
  const cyclic: Record<string, unknown> = { shared, list: [shared] };
  cyclic.self = cyclic;
  assert.equal(deepFreeze(cyclic), true);
  assert.ok(Object.isFrozen(cyclic) && Object.isFrozen(shared) && Object.isFrozen(cyclic.list));
  assert.equal(deepFreeze({ deep: [{ bytes: new Uint8Array(1) }] }), false);
  assert.equal(deepFreeze("text"), true);
  assert.equal(deepFreeze(null), true);
});

test("Memalloc.read and open reject bad frozen and decodeCache options before anything changes", () => {
  const name = uniqueName("frozen-options");
  try {
    using store = Memalloc.open(name, { maxMemory: MiB });
    store.write("a", { v: 1 });
    assert.throws(
      () => store.read("a", { frozen: 1 as unknown as boolean }),
      /The frozen option of read\(\) must be a boolean, got 1/,
    );
    assert.throws(
      () => store.read("a", { fresh: true } as never),
      /Unknown option "fresh" for read\(\): the options are frozen/,
    );
    assert.throws(() => store.read("a", null as never), TypeError);
    assert.throws(
      () => Memalloc.open(name, { decodeCache: { entries: -1 } }),
      /decodeCache.entries must be a whole number from 0 up, got -1/,
    );
    assert.throws(() => Memalloc.open(name, { decodeCache: { bytes: "1M" as never } }), TypeError);
    assert.throws(
      () => Memalloc.open(name, { decodeCache: { size: 1 } as never }),
      /Unknown decodeCache option "size" for open\(\): the decodeCache options are entries, bytes/,
    );
    assert.deepEqual(store.read("a", { frozen: true }), { v: 1 });
    store.close();
    assert.throws(() => store.read("a", { frozen: true }), { code: "ERR_MEMALLOC_CLOSED" });
  } finally {
    Memalloc.unlink(name);
  }
});

test('Memalloc.readJson returns the stored JSON text of an object (objects: "json"), the JSON of records, strings and numbers, and refuses the rest', () => {
  const name = uniqueName("read-json");
  try {
    using store = Memalloc.open(name, { maxMemory: MiB, objects: "json" });
    const session = { user: "ada", roles: ["admin", "ops"], n: 1.5, ok: true, none: null };
    store.write("session", session);
    assert.equal(store.info("session")!.kind, "json");
    assert.equal(store.readJson("session"), JSON.stringify(session));
    {
      // A handle that writes records: readJson decodes them and gives the same text.
      using records = Memalloc.open(name);
      records.write("record", session);
      assert.equal(records.info("record")!.kind, "records");
      assert.equal(records.readJson("record"), JSON.stringify(session));
      assert.equal(store.readJson("record"), JSON.stringify(session));
      assert.equal(records.readJson("session"), JSON.stringify(session));
    }
    store.write("text", 'say "hi"\n');
    assert.equal(store.readJson("text"), JSON.stringify('say "hi"\n'));
    store.write("n", 42);
    assert.equal(store.readJson("n"), "42");
    store.increment("count", 3);
    assert.equal(store.readJson("count"), "3");
    assert.equal(store.readJson("missing"), undefined);
    for (
      const [key, value, what] of [
        ["bytes", new Uint8Array([1]), /it holds bytes/],
        ["nan", NaN, /it holds the number NaN/],
        ["negative-zero", -0, /it holds the number -0/],
        ["date", { at: new Date(0) }, /JSON has no exact form for/],
        ["map", new Map([[1, 2]]), /JSON has no exact form for/],
      ] as const
    ) {
      store.write(key, value);
      assert.throws(() => store.readJson(key), {
        name: "TypeError",
        message: new RegExp(`^Cannot read "${key}" as JSON text: .*; read\\(\\) it instead$`),
      });
      assert.throws(() => store.readJson(key), what);
    }
    const before = store.stats();
    store.readJson("session");
    store.readJson("missing");
    const after = store.stats();
    assert.equal(after.hits - before.hits, 1, "a read: one hit");
    assert.equal(after.misses - before.misses, 1, "and one miss");
  } finally {
    Memalloc.unlink(name);
  }
});

test("Memalloc.readJson gives the JSON text of objects a layout-4 store holds as CBOR", () => {
  const name = uniqueName("read-json-old");
  try {
    {
      using segment = Segment.open(name, { size: MiB });
      new DataView(segment.buffer).setUint32(SEG_VERSION, 4, true);
    }
    using store = Memalloc.open(name);
    store.write("o", { a: [1, "x"] });
    assert.equal(store.info("o")!.kind, "cbor");
    assert.equal(store.readJson("o"), '{"a":[1,"x"]}');
  } finally {
    Memalloc.unlink(name);
  }
});

test("Memalloc values of JSON text read the same in every runtime, written by each", async () => {
  const name = uniqueName("json-runtimes");
  try {
    using store = Memalloc.open(name, { maxMemory: MiB });
    for (const runtime of RUNTIMES) {
      const value = { from: runtime, list: [1, -2.5, "é", null, { deep: [true] }] };
      const args = ["write-json", name, runtime, JSON.stringify(value), "json"];
      await run(runtime, "_cache_child.ts", args);
      assert.equal(store.info(runtime)!.kind, "json", runtime);
      assert.deepStrictEqual(store.read(runtime), value);
      assert.equal(store.readJson(runtime), JSON.stringify(value));
    }
  } finally {
    Memalloc.unlink(name);
  }
});

test("Memalloc records: structures each runtime adds to the shared table, or extends, are read by every other runtime and by a handle opened before", async () => {
  const name = uniqueName("records-runtimes");
  try {
    using store = Memalloc.open(name, { maxMemory: MiB });
    store.write("first", { id: 0, tags: ["a"] }); // the table's first structure, from here
    assert.deepStrictEqual(store.read("first"), { id: 0, tags: ["a"] }); // and it knows it now
    const names = ["first"];
    const values: unknown[] = [{ id: 0, tags: ["a"] }];
    for (const [i, runtime] of RUNTIMES.entries()) {
      // A shape of its own per runtime, one shared with the others, and a nested array of both.
      const value = {
        [`only_${runtime}`]: i,
        shared: { id: i, tags: ["b"] },
        list: [{ id: i, tags: [] }, { [`only_${runtime}`]: -i - 0.5 }],
        // The first structure's keys and one more: cbor-x extends that structure (the first
        // runtime) or adds one (the others). Every handle that knew the shorter one reads again.
        extended: { id: i, tags: ["c"], [`by_${runtime}`]: true },
      };
      const said = await run(runtime, "_cache_child.ts", [
        "write-json",
        name,
        runtime,
        JSON.stringify(value),
      ]);
      assert.match(said.stdout, /"kind":"records"/, runtime);
      names.push(runtime);
      values.push(value);
      // This handle has never seen the new structures: it reads the table again.
      assert.deepStrictEqual(store.read(runtime), value, runtime);
      assert.equal(store.info(runtime)!.kind, "records");
    }
    for (const runtime of RUNTIMES) {
      const { stdout } = await run(runtime, "_cache_child.ts", ["read-all", name, ...names]);
      const said = JSON.parse(stdout.trim().split("\n").at(-1)!);
      assert.deepStrictEqual(said.values, values, runtime);
      assert.deepStrictEqual(said.frozen, values, runtime);
      assert.deepStrictEqual(said.kinds, names.map(() => "records"), runtime);
    }
    assert.deepStrictEqual(store.verify(), []);
    // A purge keeps the table: a value written after it, with a known shape, still reads.
    store.purge();
    store.write("again", { id: 9, tags: [] });
    const { stdout } = await run(RUNTIMES.at(-1)!, "_cache_child.ts", ["read-all", name, "again"]);
    assert.deepStrictEqual(JSON.parse(stdout.trim().split("\n").at(-1)!).values, [
      { id: 9, tags: [] },
    ]);
    assert.deepStrictEqual(store.verify(), []);
  } finally {
    Memalloc.unlink(name);
  }
});

test("Memalloc records: processes of every runtime adding new structures at once all save them; past the table's 128 the values carry their own", async () => {
  const name = uniqueName("records-race");
  try {
    using store = Memalloc.open(name, { maxMemory: 4 * MiB });
    const at = Date.now() + 1500;
    const count = 60; // 60 shapes from each of 3 runtimes: past the shared 128
    const children = RUNTIMES.map((runtime) =>
      start(runtime, "_cache_child.ts", [
        "write-shapes",
        name,
        `${runtime}_`,
        String(count),
        String(at),
      ])
        .exited
    );
    for (const result of await Promise.all(children)) assert.equal(result.code, 0, result.stderr);
    for (const runtime of RUNTIMES) {
      for (let i = 0; i < count; i++) {
        const key = `${runtime}_${i}`;
        assert.deepStrictEqual(store.read(key), {
          [key]: i,
          common: [{ i, prefix: `${runtime}_` }],
        });
        assert.equal(store.info(key)!.kind, "records");
      }
    }
    assert.deepStrictEqual(store.verify(), []);
  } finally {
    Memalloc.unlink(name);
  }
});

test("Memalloc records whose table is lost to damage are refused as corrupt, never read with the wrong keys; new records make a new table", () => {
  const name = uniqueName("records-lost");
  try {
    {
      using store = Memalloc.open(name, { maxMemory: MiB });
      store.write("old", { a: 1, b: 2 });
    }
    {
      // Damage: the table's block is no longer a table (its magic word gone).
      using segment = Segment.open(name, { size: MiB });
      const u32 = new Uint32Array(segment.buffer);
      const table = u32[ST_RECORDS >>> 2]!;
      assert.ok(table > 0);
      u32[table >>> 2] = 0;
    }
    using store = Memalloc.open(name);
    assert.throws(() => store.read("old"), { code: "ERR_MEMALLOC_CORRUPT" });
    // A new shape and the old one, written again: a new table of its own lineage.
    store.write("new", { b: 2, a: 1 });
    store.write("again", { a: 1, b: 2 });
    assert.deepStrictEqual(store.read("new"), { b: 2, a: 1 });
    assert.deepStrictEqual(store.read("again"), { a: 1, b: 2 });
    assert.throws(() => store.read("old"), { code: "ERR_MEMALLOC_CORRUPT" });
    store.delete("old");
    assert.deepStrictEqual(store.verify(), []);
  } finally {
    Memalloc.unlink(name);
  }
});

test("Memalloc records survive a writer of every runtime killed while it adds structures: the store repairs, verifies clean, and every value reads back", async () => {
  for (const runtime of RUNTIMES) {
    for (let round = 0; round < 8; round++) {
      const name = uniqueName("records-kill");
      try {
        const prefix = `${runtime}${round}_`;
        const child = start(runtime, "_cache_child.ts", ["shapes-forever", name, prefix]);
        await child.waitForLine((line) => line.includes('"ready"'));
        // Early: while the table still grows (a save for each of the first 128 writes).
        await new Promise((resolve) => setTimeout(resolve, Math.floor(Math.random() * 12)));
        child.kill("SIGKILL");
        await child.exited;
        using store = Memalloc.open(name, { maxMemory: 4 * MiB });
        store.write("probe", 1); // takes the lock: repairs what the kill left
        assert.deepStrictEqual(store.verify(), [], `${runtime}, round ${round}`);
        let found = 0;
        for (const key of store.keys({ prefix })) {
          const i = Number(key.slice(prefix.length));
          assert.deepStrictEqual(store.read(key), { [key]: i, common: [{ i, prefix }] }, key);
          found++;
        }
        store.write(`${prefix}after`, { after: found, [`${prefix}new`]: true });
        assert.deepStrictEqual(store.read(`${prefix}after`), {
          after: found,
          [`${prefix}new`]: true,
        });
      } finally {
        Memalloc.unlink(name);
      }
    }
  }
});

test("Memalloc.update writes records for shapes the table has; a new shape goes as JSON text once, and the table learns it for the next update", () => {
  const name = uniqueName("records-update");
  try {
    using store = Memalloc.open(name, { maxMemory: MiB });
    store.write("known", { hits: 0 }); // the shape { hits } is in the table now
    assert.equal(
      store.update("known", (v: { hits: number } | undefined) => ({ hits: v!.hits + 1 }))?.hits,
      1,
    );
    assert.equal(store.info("known")!.kind, "records");
    // A shape no write has made yet: JSON text this time (the lock is held while update runs).
    const next = (v: { hits: number; last?: string } | undefined) => ({
      hits: v!.hits + 1,
      last: "x",
    });
    store.update("known", next);
    assert.equal(store.info("known")!.kind, "json");
    store.update("known", next);
    assert.equal(store.info("known")!.kind, "records");
    assert.deepStrictEqual(store.read("known"), { hits: 3, last: "x" });
    using other = Memalloc.open(name);
    assert.deepStrictEqual(other.read("known"), { hits: 3, last: "x" });
    assert.deepStrictEqual(store.verify(), []);
  } finally {
    Memalloc.unlink(name);
  }
});
