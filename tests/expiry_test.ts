import assert from "node:assert/strict";
import { ST_EXPIRY_COUNT, ST_EXPIRY_HEAP, ST_SEQ } from "../allocator/layout.ts";
import { Store, type StoreLock } from "../allocator/store.ts";
import { test } from "./_harness.ts";
import { mulberry32 } from "./_random.ts";

const KiB = 1024;
const MiB = 1024 * KiB;
const RAW = 2;
const NUMBER_KIND = 4;

function fakeLock(): StoreLock {
  let held = 0;
  return {
    lock() {
      assert.equal(held++, 0, "lock taken twice");
    },
    unlock() {
      assert.equal(--held, 0, "unlock without lock");
    },
  };
}

/** A store in a plain buffer with a clock the test moves. */
function makeStore(size = MiB, autoclean = 0.8) {
  const clock = { now: 1_000_000 };
  const buffer = new ArrayBuffer(size);
  const store = Store.open(buffer, { lock: fakeLock(), autoclean, now: () => clock.now });
  return { buffer, store, clock };
}

const bytes = (text: string) => new TextEncoder().encode(text);
const readText = (store: Store, name: string) =>
  store.read(name, (_kind, b, start, end) => new TextDecoder().decode(b.subarray(start, end)));
const names = (store: Store, prefix = "") =>
  [...store.scan(bytes(prefix), false)].map((entry) => new TextDecoder().decode(entry.name));

test("Store.write with a ttl: read, info and scan see the entry until its deadline and never after", () => {
  const { store, clock } = makeStore();
  store.write("session", RAW, bytes("alive"), undefined, 1000);
  store.write("forever", RAW, bytes("stays"));
  assert.equal(readText(store, "session"), "alive");
  assert.equal(store.info("session")!.expires, 1_001_000);
  assert.equal(store.info("forever")!.expires, 0);
  clock.now += 999;
  assert.equal(readText(store, "session"), "alive");
  assert.deepEqual(names(store), ["session", "forever"]);
  clock.now += 1; // the deadline itself: gone
  assert.equal(readText(store, "session"), undefined);
  assert.equal(store.info("session"), undefined);
  assert.deepEqual(names(store), ["forever"]);
  assert.equal(store.stats().entries, 2, "not reclaimed yet: no write since");
  assert.deepEqual(store.verify(), []);
  store.write("other", RAW, bytes("x")); // a write reclaims what has expired
  const stats = store.stats();
  assert.equal(stats.entries, 2);
  assert.equal(stats.expired, 1);
  assert.deepEqual(store.verify(), []);
});

test("Store.write over an expired entry makes a new one: new creation time, no old expiry; ifVersion sees it absent", () => {
  const { store, clock } = makeStore();
  store.write("k", RAW, bytes("old"), undefined, 10);
  const old = store.info("k")!;
  clock.now += 50;
  assert.equal(store.write("k", RAW, bytes("x"), old.version), false, "expired: not that version");
  assert.equal(store.write("k", RAW, bytes("new"), null), true, "expired: absent");
  const info = store.info("k")!;
  assert.equal(info.created, clock.now);
  assert.equal(info.expires, 0);
  assert.equal(readText(store, "k"), "new");
  assert.equal(store.stats().expired, 1);
  assert.deepEqual(store.verify(), []);
});

test("Store.delete of an expired entry returns false and reclaims it", () => {
  const { store, clock } = makeStore();
  store.write("k", RAW, bytes("v"), undefined, 10);
  clock.now += 10;
  assert.equal(store.delete("k"), false);
  const stats = store.stats();
  assert.equal(stats.entries, 0);
  assert.equal(stats.expired, 1);
  assert.equal(stats.deletes, 0);
  assert.deepEqual(store.verify(), []);
});

test("Store.increment keeps a live entry's expiry and starts an expired one afresh with the new ttl", () => {
  const { store, clock } = makeStore();
  assert.equal(store.increment("hits", 1, 0, NUMBER_KIND, 1000), 1);
  const first = store.info("hits")!.expires;
  clock.now += 500;
  assert.equal(store.increment("hits", 1, 0, NUMBER_KIND, 5000), 2);
  assert.equal(store.info("hits")!.expires, first, "a live counter keeps its window");
  clock.now += 500;
  assert.equal(store.increment("hits", 1, 0, NUMBER_KIND, 1000), 1, "a new window");
  assert.equal(store.info("hits")!.expires, clock.now + 1000);
  assert.deepEqual(store.verify(), []);
});

test("Store reclaims expired entries before it evicts any live one when the heap is full", () => {
  const { store, clock } = makeStore(256 * KiB, 0.8);
  const value = new Uint8Array(1000);
  // The oldest half live, the newest half expiring: eviction alone would take the live ones.
  let i = 0;
  for (; i < 90; i++) store.write(`live${i}`, RAW, value);
  for (let j = 0; j < 90; j++) store.write(`temp${j}`, RAW, value, undefined, 100);
  clock.now += 100;
  const before = store.stats();
  assert.equal(before.evictions, 0);
  for (let j = 0; j < 60; j++) store.write(`more${j}`, RAW, value);
  const after = store.stats();
  assert.equal(after.evictions, 0, "no live entry evicted while expired ones were there");
  assert.equal(after.expired, 90);
  for (let j = 0; j < 90; j++) assert.notEqual(readText(store, `live${j}`), undefined);
  assert.deepEqual(store.verify(), []);
});

test("Store.clean removes every expired entry, then evicts the oldest down to the watermark", () => {
  const { store, clock } = makeStore(256 * KiB, 0.5);
  const value = new Uint8Array(500);
  for (let i = 0; i < 100; i++) store.write(`a${i}`, RAW, value, undefined, i % 2 ? 100 : 0);
  assert.equal(store.clean(), 0, "under the watermark, nothing expired");
  clock.now += 100;
  assert.equal(store.clean(), 50, "the 50 expired, and nothing live: usage is under the mark");
  assert.equal(store.stats().expired, 50);
  for (let i = 100; i < 400; i++) store.write(`a${i}`, RAW, value, undefined, 100);
  clock.now += 50;
  const cleaned = store.clean();
  assert.ok(cleaned > 0);
  const stats = store.stats();
  assert.ok(stats.bytesUsed <= stats.watermark);
  assert.deepEqual(store.verify(), []);
});

test("Store expiry order stays a sound heap through random writes, overwrites, deletes, increments, evictions and time", () => {
  const { store, clock } = makeStore(512 * KiB, 0.8);
  const random = mulberry32(42);
  for (let step = 0; step < 20_000; step++) {
    const name = `k${Math.floor(random() * 2000)}`;
    const roll = random();
    if (roll < 0.55) {
      const ttl = random() < 0.7 ? 1 + Math.floor(random() * 5000) : 0;
      store.write(name, RAW, new Uint8Array(Math.floor(random() * 300)), undefined, ttl);
    } else if (roll < 0.7) {
      store.delete(name);
    } else if (roll < 0.8) {
      try {
        store.increment(name, 1, 0, NUMBER_KIND, 1 + Math.floor(random() * 3000));
      } catch (error) {
        assert.ok(error instanceof TypeError); // not a number there
      }
    } else if (roll < 0.9) {
      clock.now += Math.floor(random() * 200);
    } else {
      const info = store.info(name);
      if (info !== undefined && info.expires !== 0) assert.ok(info.expires > clock.now);
    }
    if (step % 2000 === 0) assert.deepEqual(store.verify(), [], `step ${step}`);
  }
  assert.deepEqual(store.verify(), []);
  clock.now += 10_000;
  store.clean();
  const stats = store.stats();
  for (const name of names(store)) assert.equal(store.info(name)!.expires, 0, name);
  assert.ok(stats.expired > 0);
  assert.deepEqual(store.verify(), []);
});

test("Store repair rebuilds a damaged expiry order from the entries", () => {
  const { buffer, store, clock } = makeStore();
  for (let i = 0; i < 500; i++) store.write(`k${i}`, RAW, bytes(`v${i}`), undefined, 1000 + i);
  const u32 = new Uint32Array(buffer);
  const array = u32[ST_EXPIRY_HEAP >>> 2]!;
  assert.notEqual(array, 0);
  for (let i = 0; i < 100; i++) u32[(array >>> 2) + i] = 0xdead_beec; // garbage slots
  u32[ST_EXPIRY_COUNT >>> 2] = 7;
  assert.notDeepEqual(store.verify(), []);
  u32[ST_SEQ >>> 2]! |= 1; // as if a writer died
  const repaired = Store.open(buffer, { lock: fakeLock(), autoclean: 0.8, now: () => clock.now });
  assert.deepEqual(repaired.verify(), []);
  clock.now += 1249; // k0 to k249 expire at 1_001_000 to 1_001_249
  assert.equal(repaired.clean(), 250, "the 250 that expired by now, found through the order");
  assert.equal(readText(repaired, "k249"), undefined);
  assert.equal(readText(repaired, "k250"), "v250");
  assert.deepEqual(repaired.verify(), []);
});

test("Store.purge drops the expiry order with the entries", () => {
  const { store, clock } = makeStore();
  for (let i = 0; i < 100; i++) store.write(`k${i}`, RAW, bytes("v"), undefined, 100);
  assert.equal(store.purge(), 100);
  assert.deepEqual(store.verify(), []);
  store.write("later", RAW, bytes("v"), undefined, 50);
  clock.now += 60;
  assert.equal(store.clean(), 1);
  assert.deepEqual(store.verify(), []);
});
