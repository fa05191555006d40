import assert from "node:assert/strict";
import { hashBytes } from "../allocator/directory.ts";
import {
  E_VERSION_HIGH,
  ENTRY_HEADER_BYTES,
  HEAP_OFFSET,
  NAME_CHECK_SHIFT,
  ST_SEQ,
  ST_STRIPES,
  STRIPE_STRIDE,
  stripeOf,
} from "../allocator/layout.ts";
import { Store, type StoreLock } from "../allocator/store.ts";
import { test } from "./_harness.ts";

const KiB = 1024;
const MiB = 1024 * KiB;
const RAW = 2; // a kind number; the store does not interpret it

/** A lock for a store in a plain ArrayBuffer: checks that it is used in pairs. */
function fakeLock(): StoreLock & { held: number } {
  const lock = {
    held: 0,
    lock(_exclusive: boolean) {
      assert.equal(lock.held, 0, "lock taken twice");
      lock.held++;
    },
    unlock() {
      assert.equal(lock.held, 1, "unlock without lock");
      lock.held--;
    },
  };
  return lock;
}

function makeStore(size = 1 * MiB, autoclean = 0.8, now: () => number = Date.now) {
  const buffer = new ArrayBuffer(size);
  const lock = fakeLock();
  return { buffer, lock, store: Store.open(buffer, { lock, autoclean, now }) };
}

const bytes = (text: string) => new TextEncoder().encode(text);
const readText = (store: Store, name: string) =>
  store.read(name, (_kind, b, start, end) => new TextDecoder().decode(b.subarray(start, end)));
const readKind = (store: Store, name: string) => store.read(name, (kind) => kind);

test("Store.write then Store.read returns the bytes and kind written", () => {
  const { store, lock } = makeStore();
  store.write("a", RAW, bytes("hello"));
  store.write("b", 7, new Uint8Array(0));
  assert.equal(readText(store, "a"), "hello");
  assert.equal(readKind(store, "a"), RAW);
  assert.equal(readText(store, "b"), "");
  assert.equal(readKind(store, "b"), 7);
  assert.equal(readText(store, "missing"), undefined);
  assert.equal(lock.held, 0);
  assert.deepEqual(store.verify(), []);
});

test("Store.write overwrites in place of the old entry and keeps its creation time", () => {
  let clock = 1000;
  const { store } = makeStore(MiB, 0.8, () => clock++);
  store.write("k", RAW, bytes("one"));
  store.write("other", RAW, bytes("x"));
  store.write("k", RAW, bytes("two, longer than one"));
  assert.equal(readText(store, "k"), "two, longer than one");
  const info = store.info("k")!;
  assert.equal(info.created, 1000);
  assert.equal(info.written, 1002);
  assert.equal(info.size, 20);
  assert.equal(store.stats().entries, 2);
  assert.deepEqual(store.verify(), []);
});

test("Store.delete removes an entry and says whether there was one", () => {
  const { store } = makeStore();
  store.write("a", RAW, bytes("1"));
  assert.equal(store.delete("a"), true);
  assert.equal(store.delete("a"), false);
  assert.equal(readText(store, "a"), undefined);
  assert.equal(store.stats().entries, 0);
  assert.equal(store.stats().deletes, 1);
  assert.deepEqual(store.verify(), []);
});

test("Store names are validated: type, emptiness, length and lone surrogates", () => {
  const { store, lock } = makeStore();
  assert.throws(() => store.write("", RAW, bytes("x")), {
    name: "TypeError",
    message: "Entry name must not be empty",
  });
  assert.throws(() => store.write(5 as unknown as string, RAW, bytes("x")), {
    name: "TypeError",
    message: "Entry name must be a string, got number",
  });
  assert.throws(() => store.read("\uDC00", () => 0), {
    name: "TypeError",
    message: /lone surrogate/,
  });
  assert.throws(() => store.write("x".repeat(251), RAW, bytes("x")), {
    name: "RangeError",
    message: /is 251 bytes long, the limit is 250/,
  });
  assert.throws(() => store.delete("€".repeat(84)), {
    name: "RangeError",
    message: /252 bytes long/,
  });
  store.write("€".repeat(83) + "x", RAW, bytes("ok")); // 250 bytes exactly
  assert.equal(readText(store, "€".repeat(83) + "x"), "ok");
  assert.equal(lock.held, 0);
  assert.equal(store.stats().entries, 1);
});

test("Store.write refuses a value too big for an empty store and evicts nothing", () => {
  const { store } = makeStore(256 * KiB);
  for (let i = 0; i < 10; i++) store.write(`k${i}`, RAW, new Uint8Array(1000));
  const before = store.stats();
  assert.throws(() => store.write("huge", RAW, new Uint8Array(300 * KiB)), {
    name: "RangeError",
    message: /Cannot write "huge": 307200 bytes do not fit in the store even when empty/,
  });
  const after = store.stats();
  assert.equal(after.entries, 10);
  assert.equal(after.evictions, before.evictions);
  assert.equal(after.writes, before.writes);
  assert.deepEqual(store.verify(), []);
});

test("Store.write evicts the oldest entries first, down to the watermark", () => {
  let clock = 0;
  const { store } = makeStore(256 * KiB, 0.5, () => ++clock);
  let i = 0;
  while (store.stats().evictions === 0) store.write(`k${i++}`, RAW, new Uint8Array(1000));
  const stats = store.stats();
  // The write that did not fit evicted down to the watermark, then wrote.
  assert.ok(stats.bytesUsed <= stats.watermark + 1100, `${stats.bytesUsed} > ${stats.watermark}`);
  // What is left is exactly the newest entries: the evicted ones are the oldest.
  const alive = [];
  for (let j = 0; j < i; j++) if (readKind(store, `k${j}`) !== undefined) alive.push(j);
  assert.equal(alive.length, stats.entries);
  assert.deepEqual(alive, Array.from({ length: alive.length }, (_, n) => i - alive.length + n));
  assert.equal(stats.evictions, i - alive.length);
  assert.deepEqual(store.verify(), []);
});

test("Store.write of an existing name never evicts that name first", () => {
  let clock = 0;
  const { store } = makeStore(128 * KiB, 0.8, () => ++clock);
  store.write("keep", RAW, new Uint8Array(500)); // the oldest entry
  let i = 0;
  while (store.stats().bytesUsed < 0.95 * store.capacity) {
    store.write(`k${i++}`, RAW, new Uint8Array(500));
  }
  store.write("keep", RAW, new Uint8Array(20 * KiB)); // does not fit: evicts others, not itself
  assert.equal(readKind(store, "keep"), RAW);
  assert.equal(readKind(store, "k0"), undefined);
  assert.deepEqual(store.verify(), []);
});

test("Store.clean evicts down to the watermark and returns the count", () => {
  const { store } = makeStore(512 * KiB, 0.9);
  for (let i = 0; i < 400; i++) store.write(`k${i}`, RAW, new Uint8Array(1000));
  assert.equal(store.clean(), 0, "usage is under the watermark");
  const full = makeStore(512 * KiB, 0.5).store;
  for (let i = 0; i < 400; i++) full.write(`k${i}`, RAW, new Uint8Array(1000));
  const before = full.stats();
  assert.ok(before.bytesUsed > before.watermark);
  const evicted = full.clean();
  const after = full.stats();
  assert.ok(evicted > 0);
  assert.ok(after.bytesUsed <= after.watermark);
  assert.equal(after.entries, before.entries - evicted);
  assert.equal(readKind(full, "k399"), RAW, "the newest entry stays");
  assert.deepEqual(full.verify(), []);
});

test("Store.purge removes every entry and keeps the counters", () => {
  const { store } = makeStore();
  for (let i = 0; i < 100; i++) store.write(`k${i}`, RAW, bytes(`v${i}`));
  assert.equal(store.purge(), 100);
  const stats = store.stats();
  assert.equal(stats.entries, 0);
  assert.equal(stats.writes, 100);
  assert.equal(readKind(store, "k5"), undefined);
  store.write("again", RAW, bytes("yes"));
  assert.equal(readText(store, "again"), "yes");
  assert.deepEqual(store.verify(), []);
});

test("Store directory grows so that 100,000 entries stay reachable", () => {
  const { store } = makeStore(32 * MiB);
  for (let i = 0; i < 100_000; i++) store.write(`name-${i}`, RAW, bytes(`value-${i}`));
  assert.equal(store.stats().entries, 100_000);
  for (let i = 0; i < 100_000; i += 997) assert.equal(readText(store, `name-${i}`), `value-${i}`);
  assert.deepEqual(store.verify(), []);
});

test("Store repair drops an entry whose name was damaged, rather than let it pass for another name", () => {
  const { buffer, store } = makeStore(MiB);
  store.write("name-344", RAW, bytes("value of 344"));
  store.write("name-345", RAW, bytes("value of 345"));
  const entry = store.read("name-344", (_kind, _b, _start, _end, at) => at)!;
  const u8 = new Uint8Array(buffer);
  u8[entry + ENTRY_HEADER_BYTES + 7] = "5".charCodeAt(0); // "name-344" reads "name-345" now
  assert.match(store.verify().join("\n"), /not a valid entry/);
  new Uint32Array(buffer)[ST_SEQ >>> 2]! |= 1; // as if a writer died
  const repaired = Store.open(buffer, { lock: fakeLock(), autoclean: 0.8 });
  assert.equal(readText(repaired, "name-345"), "value of 345");
  assert.equal(readText(repaired, "name-344"), undefined);
  assert.equal(repaired.stats().entries, 1);
  assert.deepEqual(repaired.verify(), []);
});

test("Store.info versions grow with every write of any name, across delete, purge and reopen", () => {
  const { buffer, store } = makeStore(MiB);
  const version = (name: string) => store.info(name)!.version;
  store.write("a", RAW, bytes("1"));
  const first = version("a");
  assert.ok(first >= 1);
  store.write("b", RAW, bytes("2"));
  assert.equal(version("b"), first + 1);
  store.write("a", RAW, bytes("3"));
  assert.equal(version("a"), first + 2);
  store.delete("a");
  store.write("a", RAW, bytes("4"));
  assert.equal(version("a"), first + 3, "a name written again never gets an old version");
  store.purge();
  store.write("a", RAW, bytes("5"));
  assert.equal(version("a"), first + 4, "purge keeps the write counter");
  const again = Store.open(buffer, { lock: fakeLock(), autoclean: 0.8 });
  again.write("c", RAW, bytes("6"));
  assert.equal(again.info("c")!.version, first + 5);
  assert.deepEqual(again.verify(), []);
});

test("Store overhead per entry is at most 48 bytes beside the name and the value", () => {
  const { store } = makeStore(32 * MiB);
  const before = store.stats().bytesUsed;
  const n = 100_000;
  for (let i = 0; i < n; i++) {
    store.write(`k${String(i).padStart(15, "0")}`, RAW, new Uint8Array(100)); // 16-byte names
  }
  const perEntry = (store.stats().bytesUsed - before) / n;
  assert.ok(perEntry - 116 <= 48, `overhead ${perEntry - 116} bytes per entry`);
});

test("Store reopened over the same buffer sees the same entries and settings", () => {
  const { buffer, store } = makeStore(MiB, 0.6);
  store.write("a", RAW, bytes("persisted"));
  const again = Store.open(buffer, { lock: fakeLock(), autoclean: 0.9 });
  assert.equal(again.autoclean, 0.6);
  assert.equal(readText(again, "a"), "persisted");
});

test("Store repairs a write interrupted before its commit: the old value stays", () => {
  let snapshot: ArrayBuffer | undefined;
  let crash = false;
  const { buffer, store } = makeStore(MiB, 0.8, () => {
    // The clock is read mid-write, after allocation and before the entry is linked.
    if (crash) snapshot = buffer.slice(0);
    return Date.now();
  });
  for (let i = 0; i < 50; i++) store.write(`k${i}`, RAW, bytes(`old ${i}`));
  crash = true;
  store.write("k7", RAW, bytes("new value that never landed"));
  const copy = snapshot!;
  assert.equal(new Uint32Array(copy)[ST_SEQ >>> 2]! & 1, 1, "the snapshot is mid-mutation");
  const repaired = Store.open(copy, { lock: fakeLock(), autoclean: 0.8 });
  assert.equal(readText(repaired, "k7"), "old 7");
  assert.equal(repaired.stats().entries, 50);
  assert.equal(repaired.stats().repairs, 1);
  assert.deepEqual(repaired.verify(), []);
});

test("Store repair keeps the later of two entries with one name, also when names share a hash", () => {
  let clock = 1_000;
  const { buffer, store } = makeStore(MiB, 0.8, () => clock++);
  // "k4uzx" and "kf2ad" have the same FNV-1a hash: the second pair goes the slower way.
  const hashOf = (name: string) => hashBytes(bytes(name), name.length);
  assert.equal(hashOf("k4uzx"), hashOf("kf2ad"));
  store.write("k4uzx", RAW, bytes("a-old"));
  store.write("kf2ad", RAW, bytes("b-old"));
  store.write("zzzzz", RAW, bytes("a-new"));
  store.write("yyyyy", RAW, bytes("b-new"));
  // Rename the two later entries in place, their name checks too, as a damaged segment (or a
  // bug) could hold them.
  const u8 = new Uint8Array(buffer);
  const u32 = new Uint32Array(buffer);
  for (const [from, to] of [["zzzzz", "k4uzx"], ["yyyyy", "kf2ad"]] as const) {
    const entry = store.read(from, (_kind, _b, _start, _end, at) => at)!;
    u8.set(bytes(to), entry + ENTRY_HEADER_BYTES);
    const high = (entry + E_VERSION_HIGH) >>> 2;
    u32[high] = (u32[high]! & ((1 << NAME_CHECK_SHIFT) - 1)) |
      ((hashOf(to) >>> NAME_CHECK_SHIFT) << NAME_CHECK_SHIFT);
  }
  u32[ST_SEQ >>> 2]! |= 1; // as if a writer died
  const repaired = Store.open(buffer, { lock: fakeLock(), autoclean: 0.8 });
  assert.equal(readText(repaired, "k4uzx"), "a-new");
  assert.equal(readText(repaired, "kf2ad"), "b-new");
  assert.equal(readText(repaired, "zzzzz"), undefined);
  assert.equal(repaired.stats().entries, 2);
  assert.deepEqual(repaired.verify(), []);
});

test("Store repairs a heap whose free lists were lost, keeping every entry", () => {
  const { buffer, store } = makeStore(MiB);
  for (let i = 0; i < 200; i++) store.write(`k${i}`, RAW, bytes(`v${i}`));
  for (let i = 0; i < 200; i += 3) store.delete(`k${i}`);
  // Scramble the heap's control block past its magic and geometry (lists and bitmaps).
  const words = new Uint32Array(buffer, HEAP_OFFSET + 32, 64);
  for (let i = 0; i < words.length; i++) words[i] = 0xdeadbeef;
  new Uint32Array(buffer)[ST_SEQ >>> 2]! |= 1; // as if a writer died
  const repaired = Store.open(buffer, { lock: fakeLock(), autoclean: 0.8 });
  assert.deepEqual(repaired.verify(), []);
  for (let i = 0; i < 200; i++) {
    assert.equal(readText(repaired, `k${i}`), i % 3 === 0 ? undefined : `v${i}`);
  }
});

/** The u32 index of the read seqlock's stripe word of `name`. */
function stripeWordOf(name: string): number {
  const encoded = bytes(name);
  return (ST_STRIPES + stripeOf(hashBytes(encoded, encoded.length)) * STRIPE_STRIDE) >>> 2;
}

/** A name of `prefix` whose stripe is (`same`) or is not the stripe of `other`. */
function nameInStripe(prefix: string, other: string, same: boolean): string {
  for (let i = 0;; i++) {
    if ((stripeWordOf(`${prefix}${i}`) === stripeWordOf(other)) === same) return `${prefix}${i}`;
  }
}

test("Store.read retries while its stripe is marked by a dead writer, then repairs under the lock", () => {
  const { buffer, store } = makeStore();
  store.write("a", RAW, bytes("value"));
  const u32 = new Uint32Array(buffer);
  u32[ST_SEQ >>> 2]! |= 1; // a writer died mid-mutation on the stripe of "a"
  u32[stripeWordOf("a")]! |= 1;
  assert.equal(readText(store, "a"), "value");
  assert.equal(store.stats().repairs, 1);
  assert.equal(u32[stripeWordOf("a")]! & 1, 0, "the repair settled the stripe");
  assert.deepEqual(store.verify(), []);
});

test("Store.read of a name is not disturbed by a mutation marked on another stripe", () => {
  const { buffer, store, lock } = makeStore();
  const other = nameInStripe("b", "a", false);
  store.write("a", RAW, bytes("value"));
  const u32 = new Uint32Array(buffer);
  u32[stripeWordOf(other)]! |= 1; // a writer at work on another stripe
  let calls = 0;
  const value = store.read("a", (_kind, b, start, end) => {
    calls++;
    assert.equal(lock.held, 0, "read lock-free");
    return new TextDecoder().decode(b.subarray(start, end));
  });
  assert.deepEqual([value, calls], ["value", 1]);
});

test("Store.read of an entry freed and its memory reused by another name mid-read retries, and never returns the other name's bytes", () => {
  // Two stores over one buffer stand for two processes. While the first reads "victim", the
  // second deletes it and writes a name of another stripe into the very block it occupied.
  const { buffer, store } = makeStore();
  const other = Store.open(buffer, { lock: fakeLock(), autoclean: 0.8 });
  const reuser = nameInStripe("other", "victim", false);
  assert.equal(reuser.length, "victim".length, "the same entry size, so the block is reused");
  store.write("victim", RAW, bytes("V".repeat(200)));
  store.write("guard", RAW, bytes("G".repeat(200))); // keeps the block from merging when freed
  const seen: string[] = [];
  const value = store.read("victim", (_kind, b, start, end, entry) => {
    if (seen.length === 0) {
      assert.ok(other.delete("victim"));
      other.write(reuser, RAW, bytes("X".repeat(200)));
      assert.equal(readText(other, reuser), "X".repeat(200));
      const name = new TextDecoder().decode(
        b.subarray(entry + ENTRY_HEADER_BYTES, entry + ENTRY_HEADER_BYTES + reuser.length),
      );
      assert.equal(name, reuser, "the victim's block now holds the other name");
    }
    const text = new TextDecoder().decode(b.subarray(start, end));
    seen.push(text);
    return text;
  });
  assert.equal(seen[0], "X".repeat(200), "the first attempt read the other name's bytes");
  assert.equal(value, undefined, "and the read retried instead of returning them");
});

test("Store random operations against a Map model stay consistent", () => {
  let seed = 12345;
  const random = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const { store } = makeStore(2 * MiB, 0.8);
  const model = new Map<string, string>();
  for (let op = 0; op < 30_000; op++) {
    const name = `n${Math.floor(random() * 2000)}`;
    const r = random();
    if (r < 0.6) {
      const value = "x".repeat(Math.floor(random() ** 3 * 4000)) + op;
      store.write(name, RAW, bytes(value));
      model.set(name, value);
    } else if (r < 0.8) {
      const had = store.delete(name);
      if (had) assert.ok(model.has(name), `deleted ${name}, which was never written`);
      model.delete(name);
    } else {
      const got = readText(store, name);
      // Evictions drop entries the model still has; a value read is always the last written.
      if (got !== undefined) assert.equal(got, model.get(name));
    }
    if (op % 5000 === 0) assert.deepEqual(store.verify(), []);
  }
  assert.deepEqual(store.verify(), []);
});

test("Store.write of the largest value fits after the directory has grown mid-heap", () => {
  const { store } = makeStore(256 * KiB);
  for (let i = 0; i < 3000; i++) store.write(`k${i}`, RAW, new Uint8Array(8)); // grows buckets
  store.purge();
  for (let i = 0; i < 3000; i++) store.write(`k${i}`, RAW, new Uint8Array(8));
  const max = store.maxEntryBytes - 3;
  store.write("big", RAW, new Uint8Array(max));
  assert.equal(store.read("big", (_k, _b, start, end) => end - start), max);
  assert.equal(store.stats().entries, 1);
  assert.deepEqual(store.verify(), []);
});
