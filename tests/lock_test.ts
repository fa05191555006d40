import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import {
  SEG_LOCK_GENERATION,
  SEG_LOCK_HOLDER,
  SEG_LOCK_KIND,
  SEG_MUTEX,
} from "../allocator/layout.ts";
import { EOWNERDEAD, MUTEX_BYTES } from "../ffi/libc.ts";
import { Segment } from "../ffi/segment.ts";
import { libc } from "../ffi/sys.ts";
import { Memalloc, MemallocError } from "../mod.ts";
import { test } from "./_harness.ts";
import { type ChildRuntime, run, RUNTIMES, start, uniqueName } from "./_spawn.ts";

const MiB = 1 << 20;
const lastJson = (stdout: string) => JSON.parse(stdout.trim().split("\n").at(-1)!);
const shmBytes = (name: string) => readFileSync(`/dev/shm/memalloc.${name}`);
/** The word _lock_child.ts's counting children increment. */
const COUNTER_OFFSET = 4096;
const mutexAvailable = libc().mutex !== undefined;

/** Runs `body` on a store of its own, removed afterwards. */
async function withName(prefix: string, body: (name: string) => Promise<void> | void) {
  const name = uniqueName(prefix);
  try {
    await body(name);
  } finally {
    Memalloc.unlink(name);
  }
}

/** Starts a child of `runtime` that takes the store's lock and keeps it until it is killed. */
async function holder(runtime: ChildRuntime, name: string) {
  const child = start(runtime, "_lock_child.ts", ["hold", name]);
  const line = JSON.parse(await child.waitForLine((l) => l.includes('"locked"')));
  assert.equal(line.holder, line.pid, "the holder records its pid");
  return child;
}

test("Memalloc.open creates stores with a robust mutex where libc is glibc, and stats() says so", async () => {
  await withName("kind", (name) => {
    using store = Memalloc.open(name, { maxMemory: MiB });
    assert.equal(store.stats().lockKind, mutexAvailable ? "mutex" : "flock");
    using raw = Segment.open(name, { size: MiB });
    assert.equal(new DataView(raw.buffer).getUint32(SEG_LOCK_KIND, true), mutexAvailable ? 1 : 2);
  });
});

test("Segment.lock records the holder's pid, and a holder killed with SIGKILL hands the mutex to the next locker, which repairs", async () => {
  for (const runtime of RUNTIMES) {
    await withName("owner-dead", async (name) => {
      using store = Memalloc.open(name, { maxMemory: MiB });
      store.write("kept", "before");
      const repairs = store.stats().repairs;
      const child = await holder(runtime, name);
      using segment = Segment.open(name, { size: MiB });
      assert.equal(segment.lockHolder, child.pid);
      assert.equal(segment.tryLock(), false, "held by the child");
      child.kill("SIGKILL");
      await child.exited;
      const started = performance.now();
      store.write("after", "the holder died");
      assert.ok(performance.now() - started < 1000, "the next lock did not wait for a timeout");
      assert.equal(store.stats().repairs, repairs + 1, "EOWNERDEAD made the next holder repair");
      assert.equal(store.read("kept"), "before");
      assert.deepEqual(store.verify(), []);
      assert.equal(segment.lockHolder, 0, "released");
    });
  }
});

test("Memalloc.write with a stopped lock holder fails after lockTimeout with ERR_MEMALLOC_LOCK_TIMEOUT naming its pid, and changes nothing", async () => {
  await withName("stopped", async (name) => {
    Memalloc.open(name, { maxMemory: MiB }).close();
    using store = Memalloc.open(name, { lockTimeout: 300 });
    store.write("kept", 1);
    const child = await holder("bun", name);
    child.kill("SIGSTOP");
    try {
      const before = shmBytes(name);
      const started = performance.now();
      assert.throws(() => store.write("kept", 2), (error: unknown) => {
        assert.ok(error instanceof MemallocError, String(error));
        assert.equal(error.code, "ERR_MEMALLOC_LOCK_TIMEOUT");
        assert.equal(
          error.message,
          `Cannot lock store "${name}": process ${child.pid} has held its lock for over 300 ms (stopped, or busy in a long call); the lock was not taken and nothing was changed`,
        );
        return true;
      });
      const waited = performance.now() - started;
      assert.ok(waited >= 290, `gave up after ${waited} ms`);
      // Only the mutex's own word may change (a waiter sets its waiters bit).
      const after = shmBytes(name);
      const changed = [...after.keys()].filter((i) =>
        after[i] !== before[i] && !(i >= SEG_MUTEX && i < SEG_MUTEX + MUTEX_BYTES)
      );
      assert.deepEqual(changed, [], "a timed-out write changed the segment");
      assert.equal(store.read("kept"), 1, "lock-free reads go on");
    } finally {
      child.kill("SIGKILL");
      await child.exited;
    }
    store.write("kept", 3); // the kernel handed the dead holder's mutex on
    assert.equal(store.read("kept"), 3);
  });
});

test("Segment.lock initialises a damaged mutex again (garbage bytes, a changed type word, a holder that no longer exists) and the store repairs", async () => {
  if (!mutexAvailable) {
    console.log("skipped: this C library has no glibc robust mutex");
    return;
  }
  const gone = spawnSync("true").pid!; // a process that has exited
  const damages: Array<[string, (words: Uint32Array, bytes: Uint8Array) => void]> = [
    ["random bytes", (_, bytes) => {
      for (let i = 0; i < MUTEX_BYTES; i++) bytes[SEG_MUTEX + i] = (i * 97 + 13) & 0xff;
    }],
    ["the type word changed", (words) => (words[(SEG_MUTEX + 16) >>> 2]! ^= 0x40)],
    ["held by a thread that no longer exists", (words) => {
      words[SEG_MUTEX >>> 2] = gone; // the futex word: the owner's thread id
      words[SEG_LOCK_HOLDER >>> 2] = gone;
    }],
  ];
  for (const [label, damage] of damages) {
    await withName("damaged-mutex", (name) => {
      using store = Memalloc.open(name, { maxMemory: MiB, lockTimeout: 200 });
      for (let i = 0; i < 50; i++) store.write(`k${i}`, i);
      using raw = Segment.open(name, { size: MiB });
      const words = new Uint32Array(raw.buffer);
      const generation = words[SEG_LOCK_GENERATION >>> 2]!;
      damage(words, new Uint8Array(raw.buffer));
      store.write("after", label);
      assert.equal(words[SEG_LOCK_GENERATION >>> 2], generation + 1, `${label}: initialised again`);
      assert.equal(store.read("after"), label);
      assert.equal(store.read("k7"), 7, label);
      assert.deepEqual(store.verify(), [], label);
      store.write("again", 1); // and it works as a lock afterwards
      assert.equal(words[SEG_LOCK_GENERATION >>> 2], generation + 1, `${label}: once`);
    });
  }
});

test("Segment.lock recovers a mutex left not recoverable (unlocked after EOWNERDEAD without pthread_mutex_consistent)", async () => {
  const ops = libc().mutex;
  if (ops === undefined) {
    console.log("skipped: this C library has no glibc robust mutex");
    return;
  }
  await withName("unrecoverable", async (name) => {
    using store = Memalloc.open(name, { maxMemory: MiB, lockTimeout: 200 });
    store.write("kept", "yes");
    const child = await holder("deno", name);
    child.kill("SIGKILL");
    await child.exited;
    // What a careless C user of the store could do: take it from the dead holder, then unlock
    // without making it consistent. The mutex is then ENOTRECOVERABLE for everyone.
    using raw = Segment.open(name, { size: MiB });
    const mutex = ops.pointer(raw.address + BigInt(SEG_MUTEX));
    assert.equal(ops.trylock(mutex), EOWNERDEAD);
    assert.equal(ops.unlock(mutex), 0);
    // glibc marks it so: __owner (at +8) is PTHREAD_MUTEX_NOTRECOVERABLE. (A trylock would say
    // ENOTRECOVERABLE, and leave the futex word naming this thread.)
    assert.equal(new Uint32Array(raw.buffer)[(SEG_MUTEX + 8) >>> 2], 0x7fff_fffe);
    store.write("after", "recovered");
    assert.equal(store.read("kept"), "yes");
    assert.equal(store.read("after"), "recovered");
    assert.deepEqual(store.verify(), []);
  });
});

test("Segment.lock excludes processes of every runtime: a Deno, a Bun and a Node process incrementing one word under it lose no update, with either lock kind", async () => {
  const kinds = mutexAvailable ? ["mutex", "flock"] as const : ["flock"] as const;
  for (const kind of kinds) {
    await withName(`count-${kind}`, async (name) => {
      Segment.open(name, { size: MiB, lock: kind }).close();
      const iterations = 20_000;
      const results = await Promise.all(
        RUNTIMES.map((runtime) =>
          run(runtime, "_lock_child.ts", ["count", name, String(iterations), kind])
        ),
      );
      for (const result of results) assert.equal(lastJson(result.stdout).kind, kind);
      using segment = Segment.open(name, { size: MiB });
      const words = new Uint32Array(segment.buffer);
      assert.equal(words[COUNTER_OFFSET >>> 2], iterations * RUNTIMES.length, kind);
    });
  }
});

test("Memalloc.open with lock flock (or MEMALLOC_LOCK=flock) makes a flock store; an existing store keeps its kind", async () => {
  await withName("flock", (name) => {
    using store = Memalloc.open(name, { maxMemory: MiB, lock: "flock" });
    assert.equal(store.stats().lockKind, "flock");
    using again = Memalloc.open(name, { lock: "mutex" });
    assert.equal(again.stats().lockKind, "flock");
    again.write("a", 1);
    assert.equal(store.read("a"), 1);
  });
  for (const runtime of RUNTIMES) {
    await withName("env-flock", async (name) => {
      await run(runtime, "_store_child.ts", ["write-samples", name], {
        env: { MEMALLOC_LOCK: "flock" },
      });
      using store = Memalloc.open(name);
      assert.equal(store.stats().lockKind, "flock", runtime);
    });
  }
});

test("Memalloc.open refuses a lock kind it does not know with ERR_MEMALLOC_CORRUPT, untouched; bad lock options are a TypeError or RangeError", async () => {
  await withName("bad-kind", (name) => {
    Memalloc.open(name, { maxMemory: MiB }).close();
    {
      using raw = Segment.open(name, { size: MiB });
      new DataView(raw.buffer).setUint32(SEG_LOCK_KIND, 7, true);
    }
    const before = shmBytes(name);
    assert.throws(() => Memalloc.open(name), {
      name: "MemallocError",
      code: "ERR_MEMALLOC_CORRUPT",
      message:
        `Cannot open store "${name}": its header names lock kind 7, which this memalloc does not know`,
    });
    assert.ok(shmBytes(name).equals(before));
  });
  const name = uniqueName("lock-options");
  const cases: Array<[unknown, ErrorConstructor, string]> = [
    [{ lock: "spin" }, TypeError, 'lock must be "mutex" or "flock", got "spin"'],
    [{ lockTimeout: "1s" }, TypeError, 'lockTimeout must be a number of milliseconds, got "1s"'],
    [
      { lockTimeout: Number.NaN },
      TypeError,
      "lockTimeout must be a number of milliseconds, got NaN",
    ],
    [{ lockTimeout: -1 }, RangeError, "lockTimeout must be from 0 to 86400000 ms, got -1"],
    [
      { lockTimeout: Infinity },
      RangeError,
      "lockTimeout must be from 0 to 86400000 ms, got Infinity",
    ],
  ];
  for (const [options, type, message] of cases) {
    assert.throws(() => Memalloc.open(name, options as never), (error: unknown) => {
      assert.ok(error instanceof type, `${JSON.stringify(options)}: ${error}`);
      assert.equal((error as Error).message, message);
      return true;
    });
  }
  assert.equal(Memalloc.exists(name), false);
});

test("Segment.lock taken twice by one thread through two handles is ERR_MEMALLOC_LOCK_HELD, not a deadlock", async () => {
  if (!mutexAvailable) {
    console.log("skipped: this C library has no glibc robust mutex");
    return;
  }
  await withName("twice", (name) => {
    using first = Segment.open(name, { size: MiB });
    using second = Segment.open(name, { size: MiB, lockTimeout: 100 });
    first.lock();
    try {
      assert.throws(() => second.lock(), { name: "MemallocError", code: "ERR_MEMALLOC_LOCK_HELD" });
    } finally {
      first.unlock();
    }
    second.lock();
    second.unlock();
  });
});
