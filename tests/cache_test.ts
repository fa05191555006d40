import assert from "node:assert/strict";
import * as memalloc from "../mod.ts";
import { Memalloc, MemallocError, type MemallocWatchEntry } from "../mod.ts";
import { test } from "./_harness.ts";
import { run, RUNTIMES, start, uniqueName } from "./_spawn.ts";

const MiB = 1 << 20;
const lastJson = (stdout: string) => JSON.parse(stdout.trim().split("\n").at(-1)!);

/** Opens a fresh store for one test and removes it afterwards. */
async function withStore(
  body: (store: Memalloc, name: string) => void | Promise<void>,
  maxMemory = MiB,
): Promise<void> {
  const name = uniqueName("cache");
  const store = Memalloc.open(name, { maxMemory });
  try {
    await body(store, name);
  } finally {
    store.close();
    Memalloc.unlink(name);
  }
}

// ---------------------------------------------------------------------------------------------
// Versions and conditional writes

test("Memalloc.list yields names with their info, oldest-written first, filtered by prefix and limit", () => {
  const name = uniqueName("list");
  using store = Memalloc.open(name, { maxMemory: 1 << 20 });
  try {
    store.write("user:1", "abc");
    store.write("user:2", new Uint8Array(7));
    store.write("page:1", { a: 1 });
    store.increment("user:3");
    const listed = [...store.list({ prefix: "user:" })];
    assert.deepEqual(listed.map((entry) => entry.name), ["user:1", "user:2", "user:3"]);
    for (const entry of listed) {
      const { name: key, ...info } = entry;
      assert.deepEqual(info, store.info(key));
    }
    assert.deepEqual(listed.map((entry) => entry.kind), ["string", "bytes", "number"]);
    assert.deepEqual([...store.list({ limit: 2 })].map((entry) => entry.name), [
      "user:1",
      "user:2",
    ]);
    assert.throws(() => store.list({ limit: -1 }), RangeError);
  } finally {
    Memalloc.unlink(name);
  }
});

test("Memalloc.write with ifVersion writes only over that version and says whether it did", () =>
  withStore((store) => {
    assert.equal(store.write("a", "one"), true);
    const v1 = store.info("a")!.version;
    assert.equal(store.write("a", "stale", { ifVersion: v1 + 1 }), false);
    assert.equal(store.read("a"), "one", "a refused write changes nothing");
    assert.equal(store.info("a")!.version, v1);
    assert.equal(store.write("a", "two", { ifVersion: v1 }), true);
    assert.equal(store.read("a"), "two");
    assert.ok(store.info("a")!.version > v1);
    assert.equal(store.write("a", "three", { ifVersion: v1 }), false, "the old version is gone");
    assert.equal(store.write("a", "over", { ifVersion: null }), false, "null: only when absent");
    assert.equal(store.write("b", "new", { ifVersion: null }), true);
    assert.equal(store.write("c", "x", { ifVersion: 0 }), false, "no entry has version 0");
    assert.equal(store.has("c"), false);
  }));

test("Memalloc.write and Memalloc.delete refuse bad options with a TypeError or RangeError, changing nothing", () =>
  withStore((store) => {
    store.write("a", "kept");
    const version = store.info("a")!.version;
    const bad: Array<[unknown, ErrorConstructor, RegExp]> = [
      [{ ifVersion: "1" }, TypeError, /ifVersion must be a version number or null, got "1"/],
      [{ ifVersion: -1 }, RangeError, /ifVersion must be a whole number from 0 to 2\^53 - 1/],
      [{ ifVersion: 1.5 }, RangeError, /got 1.5/],
      [{ ifVersion: 2 ** 53 }, RangeError, /whole number/],
      [
        { ifversion: 1 },
        TypeError,
        /Unknown option "ifversion" for write\(\): the options are ifVersion/,
      ],
      [{ ttl: "1" }, TypeError, /The ttl of write\(\) must be a number of ms, got "1"/],
      [{ ttl: -1 }, RangeError, /from 0 up/],
      [{ ttl: NaN }, RangeError, /got NaN/],
      [{ ttl: Infinity }, RangeError, /got Infinity/],
      [null, TypeError, /The options of write\(\) must be an object, got null/],
      ["x", TypeError, /must be an object/],
    ];
    for (const [options, type, message] of bad) {
      assert.throws(() => store.write("a", "changed", options as never), (error: Error) => {
        assert.ok(error instanceof type, `${error}`);
        assert.match(error.message, message);
        return true;
      });
    }
    assert.throws(() => store.delete("a", { ifVersion: null } as never), /got null/);
    assert.throws(() => store.delete("a", { ifVersion: -2 }), RangeError);
    assert.equal(store.read("a"), "kept");
    assert.equal(store.info("a")!.version, version);
  }));

test("Memalloc.delete with ifVersion deletes only that version", () =>
  withStore((store) => {
    store.write("a", 1);
    const version = store.info("a")!.version;
    assert.equal(store.delete("a", { ifVersion: version + 7 }), false);
    assert.equal(store.has("a"), true);
    assert.equal(store.delete("a", { ifVersion: version }), true);
    assert.equal(store.has("a"), false);
    assert.equal(store.delete("a", { ifVersion: version }), false);
  }));

test("Memalloc.add writes only a missing name", () =>
  withStore((store) => {
    assert.equal(store.add("job", "first"), true);
    assert.equal(store.add("job", "second"), false);
    assert.equal(store.read("job"), "first");
    store.delete("job");
    assert.equal(store.add("job", "again"), true, "a deleted name can be added again");
    assert.throws(() => store.add("job2", undefined), TypeError);
    assert.equal(store.has("job2"), false);
  }));

test("Memalloc.has says whether a name has a value, without reading it", () =>
  withStore((store) => {
    assert.equal(store.has("x"), false);
    store.write("x", new Uint8Array(0));
    assert.equal(store.has("x"), true);
    store.delete("x");
    assert.equal(store.has("x"), false);
    assert.throws(() => store.has(""), TypeError);
  }));

// ---------------------------------------------------------------------------------------------
// Numbers and increment

test("Memalloc.write stores numbers as numbers: every float64 reads back exactly, info says number", () =>
  withStore((store) => {
    for (
      const value of [
        0,
        -0,
        1,
        -1.5,
        Math.PI,
        2 ** 53,
        -(2 ** 53),
        Number.MAX_VALUE,
        5e-324,
        NaN,
        Infinity,
        -Infinity,
      ]
    ) {
      store.write("n", value);
      assert.ok(Object.is(store.read("n"), value), `${value}`);
      assert.equal(store.info("n")!.kind, "number");
      assert.equal(store.info("n")!.size, 8);
    }
  }));

test("Memalloc.increment counts from initial, adds delta, keeps integers exact to 2^53", () =>
  withStore((store) => {
    assert.equal(store.increment("hits"), 1);
    assert.equal(store.increment("hits"), 2);
    assert.equal(store.increment("hits", 10), 12);
    assert.equal(store.increment("hits", -20), -8);
    assert.equal(store.read("hits"), -8);
    assert.equal(store.increment("stock", -1, { initial: 10 }), 9);
    assert.equal(store.increment("stock", 1, { initial: 100 }), 10, "initial only for a new name");
    assert.equal(store.increment("big", 1, { initial: 2 ** 53 - 2 }), 2 ** 53 - 1);
    assert.equal(store.increment("half", 0.25), 0.25);
    const version = store.info("hits")!.version;
    store.increment("hits");
    assert.ok(store.info("hits")!.version > version, "an increment is a write: a new version");
  }));

test("Memalloc.increment refuses a non-number entry and bad arguments, changing nothing", () =>
  withStore((store) => {
    store.write("text", "12");
    store.write("object", { n: 1 });
    for (const name of ["text", "object"]) {
      assert.throws(() => store.increment(name), {
        name: "TypeError",
        message:
          `Cannot increment "${name}": it holds a value that is not a number; write a number or delete it first`,
      });
    }
    assert.equal(store.read("text"), "12");
    assert.throws(() => store.increment("n", "1" as never), {
      name: "TypeError",
      message: `Cannot increment "n": delta must be a number, got "1"`,
    });
    assert.throws(() => store.increment("n", NaN), /delta must be finite, got NaN/);
    assert.throws(() => store.increment("n", 1, { initial: Infinity }), RangeError);
    assert.throws(() => store.increment("n", 1, { start: 1 } as never), /Unknown option "start"/);
    assert.equal(store.has("n"), false);
    store.write("max", Number.MAX_VALUE);
    assert.throws(() => store.increment("max", Number.MAX_VALUE), {
      name: "RangeError",
      message: `Cannot increment "max": the result Infinity is not a finite number`,
    });
    assert.equal(store.read("max"), Number.MAX_VALUE);
    assert.deepEqual(store.verify(), []);
  }));

test("memalloc.increment, add, has, update and read work on the default store, with their ttl and frozen options", () => {
  const name = uniqueName("default-cache");
  memalloc.setDefaultStore(name, { maxMemory: MiB });
  try {
    assert.equal(memalloc.increment("n"), 1);
    assert.equal(memalloc.increment("n", 2), 3);
    assert.equal(memalloc.add("a", "x"), true);
    assert.equal(memalloc.add("a", "y"), false);
    assert.equal(memalloc.has("a"), true);
    assert.equal(memalloc.update<number>("n", (n = 0) => n * 10), 30);
    assert.equal(memalloc.write("a", "z", { ifVersion: null }), false);
    // The ttl options of the module functions reach the store.
    assert.equal(memalloc.add("t", 1, { ttl: 60_000 }), true);
    memalloc.update("u", () => 2, { ttl: 60_000 });
    assert.notEqual(memalloc.defaultMemalloc().info("t")!.expires, null);
    assert.notEqual(memalloc.defaultMemalloc().info("u")!.expires, null);
    // So does read's frozen option.
    memalloc.write("config", { flags: [1, 2] });
    const config = memalloc.read("config", { frozen: true });
    assert.equal(memalloc.read("config", { frozen: true }), config);
    assert.ok(Object.isFrozen(config));
  } finally {
    memalloc.defaultMemalloc().close();
    Memalloc.unlink(name);
  }
});

// ---------------------------------------------------------------------------------------------
// update

test("Memalloc.update writes what the callback returns, deletes on undefined, returns the value", () =>
  withStore((store) => {
    assert.deepEqual(store.update<string[]>("l", (list = []) => [...list, "a"]), ["a"]);
    assert.deepEqual(store.update<string[]>("l", (list = []) => [...list, "b"]), ["a", "b"]);
    assert.deepEqual(store.read("l"), ["a", "b"]);
    assert.equal(store.update("l", () => undefined), undefined);
    assert.equal(store.has("l"), false);
    assert.equal(store.update("missing", () => undefined), undefined, "nothing to delete");
    let seen: unknown = "not called";
    store.update("missing", (current) => (seen = current, undefined));
    assert.equal(seen, undefined);
  }));

test("Memalloc.update with a callback that throws changes nothing and rethrows", () =>
  withStore((store) => {
    store.write("a", 1);
    const version = store.info("a")!.version;
    const boom = new Error("boom");
    assert.throws(() =>
      store.update("a", () => {
        throw boom;
      }), (e) => e === boom);
    assert.throws(
      () => store.update("a", () => (() => 1) as never),
      TypeError,
      "an unstorable result",
    );
    assert.throws(() => store.update("a", "no" as never), /change must be a function/);
    assert.equal(store.read("a"), 1);
    assert.equal(store.info("a")!.version, version);
    assert.equal(store.write("b", 2), true, "the lock was released");
    assert.deepEqual(store.verify(), []);
  }));

test("Memalloc.update refuses a call on the same store from inside the callback with ERR_MEMALLOC_REENTRANT", () =>
  withStore((store) => {
    store.write("a", 1);
    const calls: Array<[string, () => unknown]> = [
      ["read", () => store.read("a")],
      ["write", () => store.write("b", 1)],
      ["increment", () => store.increment("c")],
      ["delete", () => store.delete("a")],
      ["has", () => store.has("a")],
      ["update", () => store.update("a", () => 2)],
      ["stats", () => store.stats()],
      ["clean", () => store.clean()],
    ];
    for (const [what, call] of calls) {
      assert.throws(
        () => store.update("a", () => (call(), 5)),
        (error) => {
          assert.ok(error instanceof MemallocError, `${what}: ${error}`);
          assert.equal(error.code, "ERR_MEMALLOC_REENTRANT");
          assert.match(error.message, /from inside its own update\(\) callback/);
          return true;
        },
        what,
      );
    }
    assert.equal(store.read("a"), 1);
    assert.equal(store.has("b"), false);
    assert.deepEqual(store.verify(), []);
  }));

// ---------------------------------------------------------------------------------------------
// Across processes

test("Memalloc.increment from two processes of every runtime at once loses no increment", async () => {
  const name = uniqueName("incr");
  Memalloc.open(name, { maxMemory: 4 * MiB }).close();
  try {
    const at = Date.now() + 1500;
    const runtimes = [...RUNTIMES, ...RUNTIMES];
    const results = await Promise.all(
      runtimes.map((runtime) =>
        run(runtime, "_cache_child.ts", ["increment", name, "4", "10000", `${at}`, "10000"])
      ),
    );
    for (const result of results) assert.equal(lastJson(result.stdout).done, 10_000);
    using store = Memalloc.open(name, { maxMemory: 4 * MiB });
    let total = 0;
    for (let i = 0; i < 4; i++) total += store.read<number>(`counter-${i}`)!;
    assert.equal(total, runtimes.length * 10_000);
    for (let i = 0; i < 4; i++) assert.equal(store.read(`counter-${i}`), runtimes.length * 2_500);
    assert.deepEqual(store.verify(), []);
  } finally {
    Memalloc.unlink(name);
  }
});

test("Memalloc.increment with processes SIGKILLed mid-way counts every increment that returned, and at most one more each", async () => {
  const name = uniqueName("incr-kill");
  Memalloc.open(name, { maxMemory: 4 * MiB }).close();
  try {
    const children = RUNTIMES.flatMap((runtime) =>
      [0, 1].map((k) => {
        const record = `returned-${runtime}-${k}`;
        const child = start(runtime, "_cache_child.ts", [
          "increment",
          name,
          "1",
          "1000000",
          "0",
          "100",
          record,
        ]);
        return { child, record };
      })
    );
    // Let each run a while (a few hundred increments), then kill it wherever it is.
    for (const { child } of children) {
      const after = 300 + 100 * Math.floor(Math.random() * 5);
      await child.waitForLine((line) => (JSON.parse(line).done ?? 0) >= after);
    }
    for (const { child } of children) child.kill("SIGKILL");
    for (const { child } of children) assert.equal((await child.exited).signal, "SIGKILL");
    using store = Memalloc.open(name, { maxMemory: 4 * MiB });
    const total = store.read<number>("counter-0")!;
    // Each child writes how many of its increments returned after each one: a kill between the
    // two, or during the increment after, leaves one more counted than recorded.
    let returned = 0;
    for (const { record } of children) returned += store.read<number>(record)!;
    assert.ok(
      total >= returned && total <= returned + children.length,
      `counted ${total}, increments that returned ${returned}`,
    );
    assert.deepEqual(store.verify(), []);
  } finally {
    Memalloc.unlink(name);
  }
});

test("Memalloc.add raced by 8 processes of every runtime: exactly one wins", async () => {
  const name = uniqueName("add-race");
  Memalloc.open(name, { maxMemory: MiB }).close();
  try {
    const at = Date.now() + 1500;
    const results = await Promise.all(
      Array.from(
        { length: 8 },
        (_, i) => run(RUNTIMES[i % RUNTIMES.length]!, "_cache_child.ts", ["add", name, `${at}`]),
      ),
    );
    const winners = results.filter((r) => lastJson(r.stdout).added === true);
    assert.equal(winners.length, 1);
    using store = Memalloc.open(name, { maxMemory: MiB });
    assert.equal(typeof store.read("the-one"), "string");
  } finally {
    Memalloc.unlink(name);
  }
});

test("Memalloc.write with ifVersion raced by 6 processes of every runtime: exactly one wins", async () => {
  const name = uniqueName("cas-race");
  const store = Memalloc.open(name, { maxMemory: MiB });
  try {
    store.write("cas", "start");
    const version = store.info("cas")!.version;
    const at = Date.now() + 1500;
    const results = await Promise.all(
      Array.from(
        { length: 6 },
        (_, i) =>
          run(RUNTIMES[i % RUNTIMES.length]!, "_cache_child.ts", [
            "cas",
            name,
            `${version}`,
            `${at}`,
          ]),
      ),
    );
    const winners = results.filter((r) => lastJson(r.stdout).won === true);
    assert.equal(winners.length, 1);
    assert.notEqual(store.read("cas"), "start");
  } finally {
    store.close();
    Memalloc.unlink(name);
  }
});

test("Memalloc.update from two processes of every runtime at once loses no update", async () => {
  const name = uniqueName("update-race");
  Memalloc.open(name, { maxMemory: 4 * MiB }).close();
  try {
    await Promise.all(
      RUNTIMES.flatMap((runtime) =>
        [0, 1].map(() => run(runtime, "_cache_child.ts", ["update", name, "300"]))
      ),
    );
    using store = Memalloc.open(name, { maxMemory: 4 * MiB });
    assert.equal(store.read<number[]>("list")!.length, RUNTIMES.length * 2 * 300);
    assert.deepEqual(store.verify(), []);
  } finally {
    Memalloc.unlink(name);
  }
});

// ---------------------------------------------------------------------------------------------
// keys and entries

test("Memalloc.keys lists names oldest-written first, by UTF-8 prefix, up to a limit", () =>
  withStore((store) => {
    for (const name of ["b:1", "a:1", "b:2", "é:1", "b:3", "😀", "b"]) store.write(name, name);
    assert.deepEqual(store.keys(), ["b:1", "a:1", "b:2", "é:1", "b:3", "😀", "b"]);
    assert.deepEqual(store.keys({ prefix: "b:" }), ["b:1", "b:2", "b:3"]);
    assert.deepEqual(store.keys({ prefix: "b" }), ["b:1", "b:2", "b:3", "b"]);
    assert.deepEqual(store.keys({ prefix: "é" }), ["é:1"]);
    assert.deepEqual(store.keys({ prefix: "\u{1F600}" }), ["😀"]);
    assert.deepEqual(store.keys({ prefix: "b:", limit: 2 }), ["b:1", "b:2"]);
    assert.deepEqual(store.keys({ limit: 0 }), []);
    assert.deepEqual(store.keys({ prefix: "zzz" }), []);
    store.write("b:1", "again"); // now the newest
    assert.deepEqual(store.keys({ prefix: "b:" }), ["b:2", "b:3", "b:1"]);
    store.delete("b:2");
    assert.deepEqual(store.keys({ prefix: "b:" }), ["b:3", "b:1"]);
  }));

test("Memalloc.entries yields names and values oldest-written first, and keys and entries refuse bad options", () =>
  withStore((store) => {
    store.write("n", 1);
    store.write("s", "text");
    store.write("o", { deep: [1, 2] });
    store.write("b", new Uint8Array([7]));
    assert.deepEqual([...store.entries()], [
      ["n", 1],
      ["s", "text"],
      ["o", { deep: [1, 2] }],
      ["b", new Uint8Array([7])],
    ]);
    assert.deepEqual([...store.entries({ prefix: "o" })], [["o", { deep: [1, 2] }]]);
    assert.deepEqual([...store.entries({ limit: 1 })], [["n", 1]]);
    const bad: Array<[unknown, ErrorConstructor, RegExp]> = [
      [{ prefix: 1 }, TypeError, /The prefix of keys\(\) must be a string, got 1/],
      [{ prefix: "\uD800" }, TypeError, /lone surrogate/],
      [{ limit: -1 }, RangeError, /The limit of keys\(\) must be a whole number from 0 up, got -1/],
      [{ limit: 1.5 }, RangeError, /got 1.5/],
      [{ limit: NaN }, RangeError, /got NaN/],
      [{ limit: "2" }, TypeError, /must be a number, got "2"/],
      [{ order: "name" }, TypeError, /Unknown option "order" for keys\(\)/],
      [[], TypeError, /must be an object/],
    ];
    for (const [options, type, message] of bad) {
      assert.throws(() => store.keys(options as never), (error: Error) => {
        assert.ok(error instanceof type, `${error}`);
        assert.match(error.message, message);
        return true;
      });
    }
    assert.throws(() => store.entries({ limit: -1 }), /The limit of entries\(\)/);
  }));

test("Memalloc.entries over a store written during the walk yields every unchanged entry once", () =>
  withStore((store) => {
    for (let i = 0; i < 2_000; i++) store.write(`k${i}`, i);
    const seen = new Map<string, number>();
    let step = 0;
    for (const [name] of store.entries<number>()) {
      seen.set(name, (seen.get(name) ?? 0) + 1);
      // Between chunks: overwrite some names ahead and behind, delete some, add new ones.
      if (++step % 100 === 0) {
        store.write(`k${(step * 7) % 2_000}`, -1);
        store.delete(`k${(step * 13 + 1) % 2_000}`);
        store.write(`new${step}`, step);
      }
    }
    const touched = new Set<string>();
    for (let s = 100; s <= step; s += 100) {
      touched.add(`k${(s * 7) % 2_000}`);
      touched.add(`k${(s * 13 + 1) % 2_000}`);
    }
    for (let i = 0; i < 2_000; i++) {
      const name = `k${i}`;
      if (!touched.has(name)) assert.equal(seen.get(name), 1, name);
      else assert.ok((seen.get(name) ?? 0) <= 2, name);
    }
    assert.deepEqual(store.verify(), []);
  }, 4 * MiB));

test("Memalloc.keys and entries walk 1,000,000 entries in chunks, inside an update callback refused", () =>
  withStore((store) => {
    const n = 1_000_000;
    for (let i = 0; i < n; i++) store.write(`key:${i}`, i);
    const names = store.keys({ prefix: "key:" });
    assert.equal(names.length, n);
    assert.equal(names[0], "key:0");
    assert.equal(names[n - 1], `key:${n - 1}`);
    let count = 0;
    let sum = 0;
    for (const [, value] of store.entries<number>()) {
      count++;
      sum += value;
    }
    assert.equal(count, n);
    assert.equal(sum, (n * (n - 1)) / 2);
    assert.deepEqual(store.keys({ prefix: "key:99999", limit: 3 }), [
      "key:99999",
      "key:999990",
      "key:999991",
    ]);
    assert.throws(() => store.update("key:1", () => (store.keys(), 1)), {
      code: "ERR_MEMALLOC_REENTRANT",
    });
  }, 160 * MiB));

// ---------------------------------------------------------------------------------------------
// watch

/** The next state a watch yields (it must yield one). */
async function nextState<T>(
  watch: AsyncIterableIterator<MemallocWatchEntry<T>[]>,
): Promise<MemallocWatchEntry<T>[]> {
  const { value, done } = await watch.next();
  assert.equal(done, false);
  return value;
}

test("Memalloc.watch yields the current state, then each write, delete, eviction and purge", () =>
  withStore(async (store) => {
    store.write("a", "one");
    const watch = store.watch<string>(["a", "b"]);
    const first = await nextState(watch);
    assert.deepEqual(first.map((e) => [e.name, e.value]), [["a", "one"], ["b", undefined]]);
    assert.equal(first[0]!.version, store.info("a")!.version);
    assert.equal(first[1]!.version, null);
    store.write("unwatched", 1); // moves the change count, but not the watched names
    setTimeout(() => store.write("b", "two"), 30);
    const second = await nextState(watch);
    assert.deepEqual(second.map((e) => e.value), ["one", "two"]);
    store.delete("a");
    assert.deepEqual((await nextState(watch)).map((e) => e.value), [undefined, "two"]);
    store.purge();
    assert.deepEqual((await nextState(watch)).map((e) => e.version), [null, null]);
    await watch.return!();
  }));

test("Memalloc.watch sees an eviction, and ends on abort and on close", async () => {
  await withStore(async (store) => {
    store.write("old", "x".repeat(1000));
    const controller = new AbortController();
    const watch = store.watch(["old"], { signal: controller.signal });
    await watch.next();
    for (let i = 0; store.has("old"); i++) store.write(`filler-${i}`, "y".repeat(1000));
    assert.equal((await nextState(watch))[0]!.value, undefined, "evicted");
    setTimeout(() => controller.abort(), 20);
    assert.equal((await watch.next()).done, true);
  }, 64 * 1024);
  await withStore(async (store) => {
    const watch = store.watch(["x"]);
    await watch.next();
    setTimeout(() => store.close(), 20);
    assert.equal((await watch.next()).done, true);
  });
});

test("Memalloc.changeCount moves on every write, delete, eviction, reap and purge, here and in other processes; reads leave it", () =>
  withStore(async (store, name) => {
    const moves = (change: () => unknown) => {
      const before = store.changeCount();
      change();
      return store.changeCount() !== before;
    };
    assert.equal(moves(() => store.write("a", "one")), true, "write");
    assert.equal(moves(() => store.read("a")), false, "read");
    assert.equal(moves(() => store.has("a")), false, "has");
    assert.equal(moves(() => store.info("a")), false, "info");
    assert.equal(moves(() => store.read("missing")), false, "miss");
    assert.equal(moves(() => store.increment("n")), true, "increment");
    assert.equal(moves(() => store.delete("a")), true, "delete");
    assert.equal(moves(() => store.delete("a")), false, "delete of nothing");
    store.write("short", 1, { ttl: 1 });
    await new Promise((resolve) => setTimeout(resolve, 5));
    assert.equal(moves(() => store.read("short")), false, "an expired entry: still counted");
    assert.equal(moves(() => store.clean()), true, "clean reaps it");
    assert.equal(moves(() => store.purge()), true, "purge");
    let evicted = false;
    for (let i = 0; !evicted; i++) {
      store.write(`fill-${i}`, "x".repeat(1000));
      evicted = store.stats().evictions > 0;
    }
    assert.equal(moves(() => store.write("more", "x".repeat(1000))), true, "write that evicts");
    for (const runtime of RUNTIMES) {
      const before = store.changeCount();
      await run(runtime, "_cache_child.ts", ["change", name, `c-${runtime}`]);
      assert.notEqual(store.changeCount(), before, runtime);
    }
    const value = store.changeCount();
    assert.ok(Number.isInteger(value) && value >= 0 && value < 2 ** 32, String(value));
    store.close();
    assert.throws(() => store.changeCount(), { code: "ERR_MEMALLOC_CLOSED" });
  }, 64 * 1024));

test("Memalloc.watch refuses bad names and options", () =>
  withStore((store) => {
    assert.throws(() => store.watch("a" as never), /watch\(\) takes an array of names, got "a"/);
    assert.throws(() => store.watch([""]), TypeError);
    assert.throws(() => store.watch([1 as never]), TypeError);
    assert.throws(() => store.watch(["a"], { signal: {} as never }), /must be an AbortSignal/);
    assert.throws(() => store.watch(["a"], { every: 1 } as never), /Unknown option "every"/);
  }));

test("Memalloc.watch sees writes and deletes by processes of every runtime", () =>
  withStore(async (store, name) => {
    for (const runtime of RUNTIMES) {
      const watched = `w-${runtime}`;
      const watch = store.watch<string>([watched]);
      assert.equal((await nextState(watch))[0]!.value, undefined);
      const child = start(runtime, "_cache_child.ts", ["change", name, watched]);
      const written = (await nextState(watch))[0]!;
      const seenWrite = Date.now();
      assert.match(written.value!, /^from \d+$/);
      const deleted = (await nextState(watch))[0]!;
      const seenDelete = Date.now();
      assert.equal(deleted.value, undefined);
      assert.equal(deleted.version, null);
      await watch.return!();
      const { stdout, code } = await child.exited;
      assert.equal(code, 0, stdout);
      const [wrote, removed] = stdout.trim().split("\n").map((line) => JSON.parse(line));
      // Polled every 10 ms: well within 50 ms on an idle machine; the bound allows a busy one.
      assert.ok(seenWrite - wrote.wrote < 250, `write seen after ${seenWrite - wrote.wrote} ms`);
      assert.ok(
        seenDelete - removed.deleted < 250,
        `delete seen after ${seenDelete - removed.deleted} ms`,
      );
    }
  }));
