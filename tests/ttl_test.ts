import assert from "node:assert/strict";
import type * as memalloc from "../mod.ts";
import { Memalloc, type MemallocWatchEntry } from "../mod.ts";
import { test } from "./_harness.ts";
import { run, RUNTIMES, start, uniqueName } from "./_spawn.ts";

const MiB = 1 << 20;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const lastJson = (stdout: string) => JSON.parse(stdout.trim().split("\n").at(-1)!);

async function withStore(
  body: (store: Memalloc, name: string) => void | Promise<void>,
  options: memalloc.MemallocOptions = {},
): Promise<void> {
  const name = uniqueName("ttl");
  const store = Memalloc.open(name, { maxMemory: MiB, ...options });
  try {
    await body(store, name);
  } finally {
    store.close();
    Memalloc.unlink(name);
  }
}

test("Memalloc.write with a ttl: info gives expires; read, has, keys, entries and list drop the entry at the deadline", () =>
  withStore(async (store) => {
    const before = Date.now();
    store.write("session", { user: 1 }, { ttl: 80 });
    store.write("config", "kept");
    const info = store.info("session")!;
    assert.ok(info.expires! >= before + 80 && info.expires! <= Date.now() + 80, `${info.expires}`);
    assert.equal(store.info("config")!.expires, null);
    assert.deepEqual([...store.list()].map((entry) => entry.expires === null), [false, true]);
    assert.equal(store.has("session"), true);
    await sleep(info.expires! - Date.now() + 5);
    assert.equal(store.read("session"), undefined);
    assert.equal(store.has("session"), false);
    assert.equal(store.info("session"), undefined);
    assert.deepEqual(store.keys(), ["config"]);
    assert.deepEqual([...store.entries()], [["config", "kept"]]);
    assert.equal(store.clean(), 1, "clean reclaims it");
    assert.equal(store.stats().expired, 1);
    assert.deepEqual(store.verify(), []);
  }));

test("Memalloc.add succeeds over an expired entry; increment starts an expired counter afresh", () =>
  withStore(async (store) => {
    assert.equal(store.add("lock", "a", { ttl: 30 }), true);
    assert.equal(store.add("lock", "b", { ttl: 30 }), false);
    assert.equal(store.increment("rate", 1, { ttl: 30 }), 1);
    assert.equal(store.increment("rate", 1, { ttl: 30 }), 2);
    await sleep(45);
    assert.equal(store.add("lock", "c"), true);
    assert.equal(store.read("lock"), "c");
    assert.equal(store.info("lock")!.expires, null);
    assert.equal(store.increment("rate", 1, { ttl: 30 }), 1);
    assert.deepEqual(store.verify(), []);
  }));

test("Memalloc.open ttl is the handle's default for write, add, update and a new counter; ttl 0 opts out", () =>
  withStore((store, name) => {
    using timed = Memalloc.open(name, { ttl: 60_000 });
    assert.equal(timed.ttl, 60_000);
    assert.equal(store.ttl, 0);
    const now = Date.now();
    timed.write("w", 1);
    timed.add("a", 1);
    timed.update("u", () => 1);
    timed.increment("i");
    timed.write("never", 1, { ttl: 0 });
    for (const key of ["w", "a", "u", "i"]) {
      const expires = store.info(key)!.expires!;
      assert.ok(expires >= now + 60_000 && expires <= Date.now() + 60_000, key);
    }
    assert.equal(store.info("never")!.expires, null);
    store.write("w", 2); // the other handle's default: none
    assert.equal(store.info("w")!.expires, null);
  }));

test("Memalloc ttl options refuse non-numbers, negatives, NaN and Infinity before anything changes", () =>
  withStore((store, name) => {
    store.write("a", "kept");
    const calls: Array<[string, () => unknown]> = [
      ["write", () => store.write("a", "x", { ttl: "5" as never })],
      ["write", () => store.write("a", "x", { ttl: -1 })],
      ["add", () => store.add("b", "x", { ttl: NaN })],
      ["increment", () => store.increment("c", 1, { ttl: Infinity })],
      ["update", () => store.update("a", () => "x", { ttl: -5 })],
      ["add", () => store.add("b", "x", { tll: 5 } as never)],
      ["open", () => Memalloc.open(name, { ttl: -1 })],
    ];
    for (const [verb, call] of calls) {
      assert.throws(call, (error: Error) => {
        assert.ok(error instanceof TypeError || error instanceof RangeError, `${error}`);
        assert.match(error.message, new RegExp(`${verb}\\(\\)`));
        return true;
      });
    }
    assert.equal(store.read("a"), "kept");
    assert.equal(store.has("b"), false);
    assert.equal(store.has("c"), false);
    assert.equal(store.stats().writes, 1);
  }));

test("Memalloc.watch yields when a watched entry expires", () =>
  withStore(async (store) => {
    store.write("token", "t", { ttl: 150 });
    const seen: MemallocWatchEntry[][] = [];
    const controller = new AbortController();
    const started = Date.now();
    for await (const state of store.watch(["token"], { signal: controller.signal })) {
      seen.push(state);
      if (seen.length === 2) break;
    }
    const elapsed = Date.now() - started;
    assert.equal(seen[0]![0]!.value, "t");
    assert.deepEqual(seen[1], [{ name: "token", value: undefined, version: null }]);
    assert.ok(elapsed >= 140 && elapsed < 150 + 100, `expiry seen after ${elapsed} ms`);
  }));

test("Memalloc.write with a ttl by each runtime: the other runtimes see it until the deadline and never after", async () => {
  for (const writer of RUNTIMES) {
    const name = uniqueName("ttl-x");
    using store = Memalloc.open(name, { maxMemory: MiB });
    try {
      // Observers first, so that they are reading when the entry appears and expires.
      const observers = RUNTIMES.filter((r) => r !== writer).map((runtime) => ({
        runtime,
        child: start(runtime, "_cache_child.ts", ["await-expiry", name, "entry", "en"]),
      }));
      await Promise.all(
        observers.map(({ child }) => child.waitForLine((l) => l.includes("ready"))),
      );
      const { stdout } = await run(writer, "_cache_child.ts", ["write-ttl", name, "entry", "900"]);
      const { expires } = lastJson(stdout);
      if (Date.now() < expires - 100) assert.equal(store.has("entry"), true);
      for (const { runtime, child } of observers) {
        const result = await child.exited;
        const seen = lastJson(result.stdout);
        assert.ok(seen.aliveStart > 0, `${runtime} never saw ${writer}'s entry`);
        assert.ok(
          seen.aliveStart < expires,
          `${runtime} read ${writer}'s entry alive in a read that began at ${seen.aliveStart}, at or after its expiry ${expires}`,
        );
        assert.ok(
          seen.goneEnd >= expires,
          `${runtime} lost it at ${seen.goneEnd}, before ${expires}`,
        );
        assert.deepEqual(
          [seen.has, seen.keys, seen.entries, seen.list],
          [false, false, false, false],
          `${runtime}: has, keys, entries, list after the deadline`,
        );
      }
    } finally {
      Memalloc.unlink(name);
    }
  }
});

test("Memalloc writers with ttls SIGKILLed at any instant leave a store whose expiry order verify() finds sound", async () => {
  const name = uniqueName("ttl-kill");
  Memalloc.open(name, { maxMemory: 256 * 1024 }).close();
  try {
    for (let round = 0; round < 2; round++) {
      const children = RUNTIMES.map((runtime, k) =>
        start(runtime, "_cache_child.ts", ["ttl-churn", name, String(round * 10 + k + 1)])
      );
      for (const child of children) {
        const after = 1000 + 500 * Math.floor(Math.random() * 4);
        await child.waitForLine((line) => (JSON.parse(line).done ?? 0) >= after);
      }
      for (const child of children) child.kill("SIGKILL");
      for (const child of children) assert.equal((await child.exited).signal, "SIGKILL");
      using store = Memalloc.open(name);
      store.write("after", "a", { ttl: 1 }); // repairs what a kill left, if anything
      assert.deepEqual(store.verify(), [], `round ${round}`);
      await sleep(210); // every ttl the children gave has passed
      store.clean();
      for (const entry of store.list()) {
        assert.equal(entry.expires, null, `${entry.name} should have expired`);
      }
      assert.deepEqual(store.verify(), []);
    }
  } finally {
    Memalloc.unlink(name);
  }
});
