import assert from "node:assert/strict";
import * as memalloc from "../mod.ts";
import { Memalloc } from "../mod.ts";
import { SEG_SIZE, SEG_VERSION, ST_AUTOCLEAN, ST_ORDER_TAIL } from "../allocator/layout.ts";
import { Segment } from "../ffi/segment.ts";
import { runtime, test } from "./_harness.ts";
import { run, RUNTIMES, start, uniqueName } from "./_spawn.ts";
import { startThread } from "./_thread.ts";
import { sampleValues } from "./_values.ts";

const KiB = 1024;
const MiB = 1024 * KiB;
const lastJson = (stdout: string) => JSON.parse(stdout.trim().split("\n").at(-1)!);

/** Opens a fresh store for one test and removes it afterwards. */
async function withStore(
  options: { maxMemory?: number; autoclean?: number },
  body: (store: Memalloc, name: string) => void | Promise<void>,
): Promise<void> {
  const name = uniqueName("store");
  const store = Memalloc.open(name, { maxMemory: MiB, ...options });
  try {
    await body(store, name);
  } finally {
    store.close();
    Memalloc.unlink(name);
  }
}

test("memalloc module functions run the PHP example verbatim and print Foobar123, on the store MEMALLOC_STORE names", async () => {
  for (const runtime of RUNTIMES) {
    const name = uniqueName("seed");
    try {
      const { stdout } = await run(runtime, "_seed_example.ts", [], {
        env: { MEMALLOC_STORE: name },
      });
      assert.equal(stdout, "Foobar123\n", `${runtime}: ${stdout}`);
      assert.ok(Memalloc.exists(name), `${runtime}: the example did not use MEMALLOC_STORE`);
      using store = Memalloc.open(name);
      assert.equal(store.stats().writes, 2, "the example wrote var1 twice");
      assert.equal(store.read("var1"), undefined, "the example deletes var1 at the end");
    } finally {
      Memalloc.unlink(name);
    }
  }
});

test("memalloc module delete is the same function as remove", () => {
  assert.equal(memalloc.delete, memalloc.remove);
});

test("Memalloc.read returns every value kind equal to what Memalloc.write stored", async () => {
  await withStore({ maxMemory: 4 * MiB }, (store) => {
    for (const [name, value] of Object.entries(sampleValues())) store.write(name, value);
    for (const [name, value] of Object.entries(sampleValues())) {
      assert.deepStrictEqual(store.read(name), value, name);
    }
    assert.equal(store.read("missing"), undefined);
    assert.equal(store.info("string")!.kind, "string");
    assert.equal(store.info("bytes")!.kind, "bytes");
    assert.equal(store.info("map")!.kind, "cbor");
  });
});

test("Memalloc.read of bytes returns a copy, not a view of shared memory; small copies share a pool under Deno and Node without overlapping", async () => {
  await withStore({}, (store) => {
    store.write("b", new Uint8Array([1, 2, 3]));
    store.write("big", new Uint8Array(5000).fill(7));
    const first = store.read<Uint8Array>("b")!;
    const second = store.read<Uint8Array>("b")!;
    first[0] = 99;
    assert.deepEqual(second, new Uint8Array([1, 2, 3]), "another read's copy is its own");
    assert.deepEqual(store.read("b"), new Uint8Array([1, 2, 3]), "the store is unchanged");
    assert.equal(first.byteLength, 3);
    // Deno and Node carve values of up to 4 KiB out of a 64 KiB slab; Bun gives each its own
    // buffer.
    assert.equal(first.buffer.byteLength, runtime === "bun" ? 3 : 64 * KiB);
    assert.notEqual(first.buffer.byteLength, store.maxMemory, "not the mapping");
    const big = store.read<Uint8Array>("big")!;
    assert.equal(big.buffer.byteLength, 5000, "a value over 4 KiB has a buffer of its own");
    // Many reads fill slab after slab; every copy keeps its own bytes.
    const copies = Array.from({ length: 2000 }, () => store.read<Uint8Array>("b")!);
    copies.forEach((copy, i) => (copy[1] = i & 0xff));
    copies.forEach((copy, i) => assert.deepEqual([...copy], [1, i & 0xff, 3]));
  });
});

test("Memalloc values written by one runtime are read equal by the others: Bun -> Deno -> Node -> Bun", async () => {
  for (
    const [writer, reader] of [["bun", "deno"], ["deno", "node"], ["node", "bun"]] as const
  ) {
    const name = uniqueName("cross");
    try {
      await run(writer, "_store_child.ts", ["write-samples", name]);
      const out = lastJson((await run(reader, "_store_child.ts", ["read-samples", name])).stdout);
      assert.deepEqual(out.failures, [], `${writer} -> ${reader}`);
      assert.equal(out.checked, Object.keys(sampleValues()).length);
    } finally {
      Memalloc.unlink(name);
    }
  }
});

test("Memalloc.write evicts the oldest entries first and stays under the watermark", async () => {
  await withStore({ maxMemory: 256 * KiB, autoclean: 0.6 }, (store) => {
    let i = 0;
    while (store.stats().evictions === 0) store.write(`k${i++}`, "v".repeat(900));
    const stats = store.stats();
    assert.ok(stats.bytesUsed <= stats.watermark + 1024);
    assert.equal(store.read("k0"), undefined, "the oldest is gone");
    assert.equal(store.read(`k${i - 1}`), "v".repeat(900), "the newest stays");
    assert.deepEqual(store.verify(), []);
  });
});

test("Memalloc.clean brings usage to the watermark; a too-big value is refused and nothing lost", async () => {
  await withStore({ maxMemory: 256 * KiB, autoclean: 1 }, (store) => {
    for (let i = 0; i < 200; i++) store.write(`k${i}`, "v".repeat(1000));
    const before = store.stats();
    assert.throws(() => store.write("huge", "x".repeat(300 * KiB)), {
      name: "RangeError",
      message: /Cannot write "huge": 307200 bytes do not fit in the store even when empty/,
    });
    assert.deepEqual(store.stats().entries, before.entries);
    assert.equal(store.read("k0"), "v".repeat(1000));
  });
  await withStore({ maxMemory: 256 * KiB, autoclean: 0.5 }, (store) => {
    for (let i = 0; i < 190; i++) store.write(`k${i}`, "v".repeat(1000)); // ~200 of 256 KiB
    assert.equal(store.stats().evictions, 0);
    assert.ok(store.stats().bytesUsed > store.stats().watermark);
    const evicted = store.clean();
    assert.ok(evicted > 0);
    assert.ok(store.stats().bytesUsed <= store.stats().watermark);
    assert.equal(store.read("k189"), "v".repeat(1000));
    assert.equal(store.read("k0"), undefined);
    assert.equal(store.clean(), 0);
  });
});

test("Memalloc.purge removes every entry at once", async () => {
  await withStore({}, (store) => {
    for (let i = 0; i < 50; i++) store.write(`k${i}`, i);
    assert.equal(store.purge(), 50);
    assert.equal(store.stats().entries, 0);
    assert.equal(store.read("k1"), undefined);
    assert.deepEqual(store.verify(), []);
  });
});

test("Memalloc.info keeps the creation time across overwrites and updates the write time", async () => {
  await withStore({}, async (store) => {
    store.write("a", "one");
    const first = store.info("a")!;
    await new Promise((resolve) => setTimeout(resolve, 5));
    store.write("a", "two");
    const second = store.info("a")!;
    assert.equal(second.created, first.created);
    assert.ok(second.written > first.written);
    assert.equal(second.size, 3);
    assert.equal(store.info("missing"), undefined);
  });
});

test("Memalloc.stats counts writes, hits and misses across handles", async () => {
  await withStore({}, (store, name) => {
    store.write("a", 1);
    store.read("a");
    store.read("b");
    using other = Memalloc.open(name);
    other.read("a");
    other.close();
    const stats = store.stats();
    assert.equal(stats.writes, 1);
    assert.equal(stats.hits, 2);
    assert.equal(stats.misses, 1);
    assert.equal(stats.entries, 1);
    assert.equal(stats.capacity, MiB);
    assert.equal(stats.autoclean, 0.8);
    assert.equal(stats.name, name);
  });
});

test("Memalloc.open of an existing store keeps its size and watermark", async () => {
  await withStore({ maxMemory: MiB, autoclean: 0.5 }, (_store, name) => {
    using again = Memalloc.open(name, { maxMemory: 8 * MiB, autoclean: 0.9 });
    assert.equal(again.maxMemory, MiB);
    assert.equal(again.autoclean, 0.5);
  });
});

test("Memalloc.open with create: false opens an existing store with its settings and refuses a missing one with ERR_MEMALLOC_NOT_FOUND, creating nothing", async () => {
  const missing = uniqueName("missing");
  assert.throws(
    () => Memalloc.open(missing, { create: false }),
    (error: unknown) =>
      error instanceof memalloc.MemallocError && error.code === "ERR_MEMALLOC_NOT_FOUND" &&
      error.message.includes(missing),
  );
  assert.equal(Memalloc.exists(missing), false);
  assert.throws(() => Memalloc.open(missing, { create: 1 as unknown as boolean }), TypeError);
  await withStore({ autoclean: 0.5 }, (store, name) => {
    store.write("a", "b");
    using other = Memalloc.open(name, { create: false, maxMemory: 4 * MiB });
    assert.equal(other.maxMemory, MiB);
    assert.equal(other.autoclean, 0.5);
    assert.equal(other.read("a"), "b");
  });
});

test("Memalloc.map sums the heap's blocks into cells by kind (records as CBOR), with the free histogram and fragmentation", async () => {
  await withStore({}, (store) => {
    using json = Memalloc.open(store.name, { objects: "json" });
    const fresh = store.map(64);
    assert.equal(fresh.cells.length, 64);
    assert.equal(fresh.fragmentation, 0);
    assert.equal(fresh.freeBlocks, 1);
    for (let i = 0; i < 2000; i++) {
      (i % 16 === 0 ? json : store).write(
        `k${i}`,
        i % 4 === 0
          ? (i % 8 === 0 ? { i } : { at: new Date(i) })
          : i % 4 === 1
          ? new Uint8Array(40)
          : i % 4 === 2
          ? i
          : "x".repeat(i % 90),
      );
    }
    for (let i = 0; i < 2000; i += 3) store.delete(`k${i}`);
    const map = store.map(128);
    const sum = (key: keyof memalloc.StoreMapCell) =>
      map.cells.reduce((n, cell) => n + cell[key], 0);
    assert.equal(sum("free"), map.freeBytes);
    assert.equal(map.freeBytes, store.stats().bytesFree);
    for (const key of ["string", "bytes", "number", "json", "cbor", "other"] as const) {
      assert.ok(sum(key) > 0, `no ${key} bytes in the map`);
    }
    assert.ok(map.fragmentation > 0 && map.fragmentation < 1, `fragmentation ${map.fragmentation}`);
    assert.equal(map.freeHistogram.reduce((n, bar) => n + bar.count, 0), map.freeBlocks);
    assert.equal(map.freeHistogram.reduce((n, bar) => n + bar.bytes, 0), map.freeBytes);
    assert.equal(Math.max(...map.freeHistogram.map((bar) => bar.max)) >= map.largestFree, true);
    for (const cell of map.cells.slice(0, -1)) {
      const total = Object.values(cell).reduce((n, v) => n + v, 0);
      assert.ok(total <= map.cellBytes, `a cell holds ${total} of ${map.cellBytes} bytes`);
    }
    assert.throws(() => store.map(0), RangeError);
    assert.throws(() => store.map(1.5), TypeError);
  });
});

test("Memalloc.verify reports damaged headers and links without changing them; the next write repairs", async () => {
  await withStore({}, (store, name) => {
    for (let i = 0; i < 50; i++) store.write(`k${i}`, `value ${i}`);
    assert.deepEqual(store.verify(), []);
    using raw = Segment.open(name, { size: MiB });
    const bytes = new Uint8Array(raw.buffer);
    const view = new DataView(raw.buffer);
    view.setFloat64(SEG_SIZE, 12345, true);
    view.setFloat64(ST_AUTOCLEAN, Number.NaN, true);
    view.setUint32(ST_ORDER_TAIL, 8, true); // not an entry
    const damaged = bytes.slice();
    const problems = store.verify();
    assert.ok(problems.includes("segment header: size 12345"), problems.join("\n"));
    assert.ok(
      problems.includes("store header: watermark NaN is not in (0, 1]"),
      problems.join("\n"),
    );
    assert.ok(problems.some((p) => p.startsWith("write order:")), problems.join("\n"));
    assert.deepEqual(bytes, damaged, "verify() wrote nothing");
    view.setFloat64(SEG_SIZE, MiB, true);
    store.write("k50", "after"); // repairs the store header and the write order first
    assert.deepEqual(store.verify(), []);
    assert.equal(store.read("k7"), "value 7");
    assert.equal(store.stats().repairs, 1);
  });
});

test("Memalloc entries outlive the handle and the process that wrote them", async () => {
  const name = uniqueName("outlive");
  try {
    await run("bun", "_store_child.ts", ["write-samples", name]);
    assert.equal(Memalloc.exists(name), true);
    using store = Memalloc.open(name);
    assert.equal(store.read("string"), "Foobar");
  } finally {
    Memalloc.unlink(name);
  }
});

test("Memalloc in a Worker and the main thread share one store, each with its own lock", async () => {
  await withStore({ maxMemory: 4 * MiB }, async (store, name) => {
    const worker = await startThread(new URL("./_worker.ts", import.meta.url));
    let ready!: () => void;
    const listening = new Promise<void>((resolve) => (ready = resolve));
    const done = new Promise<{ done: number }>((resolve, reject) => {
      worker.onMessage((data: { ready?: boolean; done: number }) =>
        data.ready ? ready() : resolve(data)
      );
      worker.onError(reject);
    });
    await listening;
    worker.postMessage({ store: name, count: 2000 });
    for (let i = 0; i < 2000; i++) store.write(`main-${i}`, i);
    const result = await done;
    worker.terminate();
    assert.equal(result.done, 2000);
    for (let i = 0; i < 2000; i += 97) {
      assert.deepEqual(store.read(`w${i}`), { from: "worker", i });
      assert.equal(store.read(`main-${i}`), i);
    }
    assert.equal(store.stats().entries, 4000);
    assert.deepEqual(store.verify(), []);
  });
});

test("Memalloc with two Deno, two Bun and two Node processes writing and reading: no torn value", async () => {
  const name = uniqueName("six");
  try {
    const children = [...RUNTIMES, ...RUNTIMES].map((runtime, i) =>
      start(runtime, "_store_child.ts", [
        "stress",
        name,
        `${runtime}${i}`,
        "3000",
      ])
    );
    const results = await Promise.all(children.map((c) => c.exited));
    const outs = results.map((r) => {
      assert.equal(r.code, 0, r.stdout + r.stderr);
      return lastJson(r.stdout);
    });
    for (const out of outs) {
      assert.equal(out.torn, 0, JSON.stringify(out));
      assert.ok(out.writes > 100 && out.hits > 100, JSON.stringify(out));
    }
    const check = lastJson((await run("deno", "_store_child.ts", ["check", name])).stdout);
    assert.deepEqual(check.problems, []);
    assert.equal(check.bad, 0);
    const writes = outs.reduce((sum, o) => sum + o.writes, 0);
    assert.equal(check.stats.writes, writes);
    assert.ok(check.stats.evictions > 0, "the small store evicted");
  } finally {
    Memalloc.unlink(name);
  }
});

test("Memalloc.read of a string being rewritten between ASCII and multi-byte text returns one of the two, never crashes", async () => {
  // Strings used to be decoded in place, in segment memory: TextDecoder crashed the reading
  // process (SIGSEGV) when a writer changed the bytes from ASCII to multi-byte mid-decode.
  const name = uniqueName("flip");
  try {
    const writer = start("bun", "_store_child.ts", ["flip-write", name, "3000"]);
    const readers = RUNTIMES.map((runtime) =>
      start(runtime, "_store_child.ts", ["flip-read", name, "2500"])
    );
    for (const [i, reader] of readers.entries()) {
      const result = await reader.exited;
      assert.equal(result.code, 0, `${RUNTIMES[i]} reader: ${result.signal} ${result.stderr}`);
      const out = lastJson(result.stdout);
      assert.equal(out.bad, 0, JSON.stringify(out));
      assert.ok(out.hits > 100, JSON.stringify(out));
    }
    assert.equal((await writer.exited).code, 0);
  } finally {
    Memalloc.unlink(name);
  }
});

test("Memalloc writer killed with SIGKILL mid-write is repaired by the next process", async () => {
  const name = uniqueName("kill");
  try {
    for (let round = 0; round < 6; round++) {
      const runtime = RUNTIMES[round % RUNTIMES.length]!;
      const child = start(runtime, "_store_child.ts", ["write-loop", name]);
      await child.waitForLine((line) => line.includes("ready"));
      await new Promise((resolve) => setTimeout(resolve, 20 + Math.random() * 80));
      child.kill("SIGKILL");
      await child.exited;
    }
    const check = lastJson((await run("bun", "_store_child.ts", ["check", name])).stdout);
    assert.deepEqual(check.problems, []);
    assert.equal(check.bad, 0);
    assert.ok(check.found > 0);
  } finally {
    Memalloc.unlink(name);
  }
});

test("Memalloc on stores of layout versions 4 and 5 reads and writes them: objects as CBOR on 4, JSON text on 5, never records", () => {
  const name = uniqueName("layout4");
  try {
    {
      using store = Memalloc.open(name, { maxMemory: 1 << 20 });
      store.write("new", { a: [1, 2] });
      assert.equal(store.info("new")!.kind, "records");
    }
    // What older memallocs made: the same layout but for the records kind (5), and for the
    // JSON kind too (4). Their objects are JSON text and CBOR.
    for (const [version, kind] of [[5, "json"], [4, "cbor"]] as const) {
      using segment = Segment.open(name, { size: 1 << 20 });
      new DataView(segment.buffer).setUint32(SEG_VERSION, version, true);
      using store = Memalloc.open(name);
      store.purge(); // a records value would be unreadable to the memalloc that made the store
      store.write("old", { a: [1, 2] });
      assert.equal(store.info("old")!.kind, kind, `layout ${version}`);
      assert.deepEqual(store.read("old"), { a: [1, 2] });
      assert.deepEqual(store.read("old", { frozen: true }), { a: [1, 2] });
      assert.equal(store.update("old", () => ({ b: 1 }))?.b, 1);
      assert.equal(store.info("old")!.kind, kind);
      assert.deepEqual(store.verify(), []);
    }
  } finally {
    Memalloc.unlink(name);
  }
});
