import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import {
  LAYOUT_VERSION,
  MAGIC,
  OLDEST_LAYOUT_VERSION,
  SEG_CREATED,
  SEG_CREATOR_PID,
  SEG_MAGIC,
  SEG_SIZE,
  SEG_VERSION,
} from "../allocator/layout.ts";
import { MemallocError } from "../errors.ts";
import { MAX_NAME_BYTES, Segment } from "../ffi/segment.ts";
import { test } from "./_harness.ts";
import { OTHER_UID, prepareOtherUser } from "./_other_user.ts";
import { isRoot, run, RUNTIMES, start, uniqueName } from "./_spawn.ts";

const MiB = 1 << 20;
const shmPath = (name: string) => `/dev/shm/memalloc.${name}`;
const lastJson = (stdout: string) => JSON.parse(stdout.trim().split("\n").at(-1)!);

test("Segment.open creates a segment and a reopen reads back the bytes written", () => {
  const name = uniqueName("reopen");
  try {
    const first = Segment.open(name, { size: MiB });
    assert.equal(first.created, true);
    assert.equal(first.size, MiB);
    assert.ok(Math.abs(first.createdAt - Date.now()) < 60_000);
    new Uint8Array(first.buffer).set([1, 2, 3, 4], 4096);
    first.close();
    using second = Segment.open(name, { size: MiB });
    assert.equal(second.created, false);
    assert.equal(second.createdAt, first.createdAt);
    assert.deepEqual([...new Uint8Array(second.buffer, 4096, 4)], [1, 2, 3, 4]);
  } finally {
    Segment.unlink(name);
  }
});

test("Segment.unlink removes the segment and says whether there was one", () => {
  const name = uniqueName("unlink");
  Segment.open(name, { size: MiB }).close();
  assert.equal(Segment.exists(name), true);
  assert.equal(existsSync(shmPath(name)), true);
  assert.equal(Segment.unlink(name), true);
  assert.equal(Segment.exists(name), false);
  assert.equal(existsSync(shmPath(name)), false);
  assert.equal(Segment.unlink(name), false);
});

test("Segment.open reserves the whole size and writes the header once", () => {
  const name = uniqueName("reserve");
  try {
    using segment = Segment.open(name, { size: 4 * MiB });
    // posix_fallocate: the tmpfs blocks are allocated now, not on first touch.
    assert.ok(statSync(shmPath(name)).blocks * 512 >= 4 * MiB);
    const view = new DataView(segment.buffer);
    assert.equal(view.getUint32(SEG_MAGIC, true), MAGIC);
    assert.equal(view.getUint32(SEG_VERSION, true), LAYOUT_VERSION);
  } finally {
    Segment.unlink(name);
  }
});

test("Segment.open of an existing segment with another size uses its real size", () => {
  const name = uniqueName("size");
  try {
    Segment.open(name, { size: 2 * MiB }).close();
    using again = Segment.open(name, { size: 8 * MiB });
    assert.equal(again.size, 2 * MiB);
    assert.equal(again.buffer.byteLength, 2 * MiB);
  } finally {
    Segment.unlink(name);
  }
});

test("Segment.open sets mode 0600 by default and the mode asked for", () => {
  const a = uniqueName("mode-default");
  const b = uniqueName("mode-set");
  try {
    Segment.open(a, { size: MiB }).close();
    Segment.open(b, { size: MiB, mode: 0o640 }).close();
    assert.equal(statSync(shmPath(a)).mode & 0o777, 0o600);
    assert.equal(statSync(shmPath(b)).mode & 0o777, 0o640);
  } finally {
    Segment.unlink(a);
    Segment.unlink(b);
  }
});

test("Segment.close is safe twice, detaches the buffer and makes later use a MemallocError", () => {
  const name = uniqueName("close");
  try {
    const segment = Segment.open(name, { size: MiB });
    const bytes = new Uint8Array(segment.buffer);
    segment.close();
    segment.close();
    assert.equal(segment.closed, true);
    assert.equal(bytes.length, 0); // a stale view reads nothing rather than faulting
    assert.throws(() => segment.buffer, { name: "MemallocError", code: "ERR_MEMALLOC_CLOSED" });
    assert.throws(() => segment.lock(), { name: "MemallocError", code: "ERR_MEMALLOC_CLOSED" });
  } finally {
    Segment.unlink(name);
  }
});

test("Segment.open rejects bad names with a TypeError or RangeError and creates nothing", () => {
  // Other processes on the machine may create stores meanwhile: look only for what these names
  // could have made. Each string case carries a marker of this test's own.
  const marker = uniqueName("bad");
  const could = (file: string) => file.includes(marker) || /^memalloc\.(|42|undefined)$/.test(file);
  const before = readdirSync("/dev/shm").filter(could);
  const cases: Array<[unknown, ErrorConstructor, RegExp]> = [
    ["", TypeError, /must not be empty/],
    [`${marker}/b`, TypeError, /must not contain "\/"/],
    [`${marker}\0b`, TypeError, /NUL/],
    [`${marker}\uD800y`, TypeError, /lone surrogate/],
    [42, TypeError, /must be a string, got 42/],
    [undefined, TypeError, /must be a string/],
    [marker.padEnd(MAX_NAME_BYTES + 1, "n"), RangeError, /bytes long, the limit is 246/],
    [marker + "é".repeat(124), RangeError, /bytes long, the limit is 246/],
  ];
  for (const [name, type, message] of cases) {
    assert.throws(() => Segment.open(name as string, { size: MiB }), (error: unknown) => {
      assert.ok(error instanceof type, `${String(name)}: ${error}`);
      assert.match((error as Error).message, message);
      return true;
    });
  }
  assert.throws(() => Segment.unlink("a/b"), TypeError);
  assert.throws(() => Segment.exists(""), TypeError);
  assert.deepEqual(readdirSync("/dev/shm").filter(could), before);
});

test("Segment.open accepts a name of exactly the longest length", () => {
  const name = `${uniqueName("long")}-`.padEnd(MAX_NAME_BYTES, "x");
  try {
    using segment = Segment.open(name, { size: MiB });
    assert.equal(segment.name, name);
  } finally {
    Segment.unlink(name);
  }
});

test("Segment.open rejects bad sizes and modes before any system call", () => {
  const name = uniqueName("bad-size");
  const cases: Array<[unknown, unknown, ErrorConstructor]> = [
    [Number.NaN, undefined, TypeError],
    [1.5 * MiB + 0.5, undefined, TypeError],
    ["1048576", undefined, TypeError],
    [-1, undefined, RangeError],
    [0, undefined, RangeError],
    [1024, undefined, RangeError],
    [2 ** 40, undefined, RangeError],
    [Infinity, undefined, TypeError],
    [MiB, -1, RangeError],
    [MiB, 0o1000, RangeError],
    [MiB, 0.5, RangeError],
  ];
  for (const [size, mode, type] of cases) {
    const options = mode === undefined ? { size } : { size, mode };
    assert.throws(
      () => Segment.open(name, options as { size: number; mode?: number }),
      type,
      `size ${String(size)} mode ${String(mode)}`,
    );
  }
  assert.throws(() => Segment.open(name, null as unknown as { size: number }), TypeError);
  assert.equal(Segment.exists(name), false);
});

test("Segment.open refuses an object that is not a memalloc segment and leaves it untouched", () => {
  const name = uniqueName("foreign");
  const bytes = new Uint8Array(MiB);
  bytes.set(new TextEncoder().encode("PNG not a memalloc segment"), 0);
  writeFileSync(shmPath(name), bytes);
  try {
    assert.throws(() => Segment.open(name, { size: MiB }), (error: unknown) => {
      assert.ok(error instanceof MemallocError);
      assert.equal(error.code, "ERR_MEMALLOC_FORMAT");
      assert.match(error.message, /not a memalloc segment \(magic 0x20474e50\)/);
      return true;
    });
    assert.deepEqual(new Uint8Array(readFileSync(shmPath(name))), bytes);
  } finally {
    Segment.unlink(name);
  }
});

test("Segment.open refuses an older or a newer layout version, says how to remove it, and leaves the segment untouched", () => {
  for (const [version, made] of [[7, "a newer"], [1, "an older"], [3, "an older"]] as const) {
    const name = uniqueName("version");
    try {
      Segment.open(name, { size: MiB }).close();
      const bytes = new Uint8Array(readFileSync(shmPath(name)));
      new DataView(bytes.buffer).setUint32(SEG_VERSION, version, true);
      writeFileSync(shmPath(name), bytes);
      assert.throws(() => Segment.open(name, { size: MiB }), {
        name: "MemallocError",
        code: "ERR_MEMALLOC_VERSION",
        message:
          `Cannot open store "${name}": its layout version is ${version}, this memalloc reads versions ${OLDEST_LAYOUT_VERSION} to ${LAYOUT_VERSION}; it was made by ${made} memalloc: upgrade every process that shares it, or once none uses it, remove it with Memalloc.unlink("${name}") (its entries are lost)`,
      });
      assert.deepEqual(new Uint8Array(readFileSync(shmPath(name))), bytes);
    } finally {
      Segment.unlink(name);
    }
  }
});

test("Segment.open initialises a segment whose creator died before finishing the header", () => {
  // What a creator killed at each step of writing the header leaves: the fields before the
  // magic, one more at each step, and the magic still 0.
  const steps: Array<(view: DataView) => void> = [
    () => {}, // sized, all zero
    (view) => view.setUint32(SEG_VERSION, 1, true),
    (view) => view.setFloat64(SEG_SIZE, MiB, true),
    (view) => view.setFloat64(SEG_CREATED, Date.now(), true),
    (view) => view.setUint32(SEG_CREATOR_PID, 4242, true),
  ];
  for (let step = 0; step < steps.length; step++) {
    const name = uniqueName("half-made");
    const bytes = new Uint8Array(MiB);
    const view = new DataView(bytes.buffer);
    for (const write of steps.slice(0, step + 1)) write(view);
    writeFileSync(shmPath(name), bytes);
    try {
      using segment = Segment.open(name, { size: 2 * MiB });
      assert.equal(segment.size, MiB, `step ${step}`);
      const header = new DataView(segment.buffer);
      assert.equal(header.getUint32(SEG_MAGIC, true), MAGIC, `step ${step}`);
      assert.equal(header.getFloat64(SEG_SIZE, true), MiB, `step ${step}`);
    } finally {
      Segment.unlink(name);
    }
  }
});

test("Segment.open refuses a magic-less object with data past the header fields, untouched", () => {
  const name = uniqueName("zero-magic");
  const bytes = new Uint8Array(MiB);
  bytes[200] = 1; // in the store header, which nobody writes before the magic
  writeFileSync(shmPath(name), bytes);
  try {
    assert.throws(() => Segment.open(name, { size: MiB }), {
      name: "MemallocError",
      code: "ERR_MEMALLOC_FORMAT",
    });
    assert.deepEqual(new Uint8Array(readFileSync(shmPath(name))), bytes);
  } finally {
    Segment.unlink(name);
  }
});

test("Segment.open fails with ENOSPC when /dev/shm is full and leaves no segment", async () => {
  if (!isRoot()) {
    console.log("skipped: needs root to mount a small tmpfs on /dev/shm in a private namespace");
    return;
  }
  for (const runtime of RUNTIMES) {
    const name = uniqueName("enospc");
    const result = await run(runtime, "_segment_child.ts", ["open", name, String(8 * MiB)], {
      wrapper: [
        "unshare",
        "-m",
        "sh",
        "-c",
        'mount -t tmpfs -o size=1m tmpfs /dev/shm && exec "$@"',
        "sh",
      ],
    });
    const out = lastJson(result.stdout);
    assert.equal(out.error, "MemallocError", result.stdout + result.stderr);
    assert.equal(out.code, "ENOSPC");
    assert.equal(out.syscall, "posix_fallocate");
    assert.equal(out.exists, false, "the failed open left its segment behind");
    assert.match(
      out.message,
      new RegExp(`Cannot reserve memory for store "${name}": no space left on device \\(ENOSPC\\)`),
    );
  }
});

test("Segment.open fails with EACCES on a segment owned by another user", async () => {
  const other = await prepareOtherUser(["_segment_child.ts"]);
  if (other === undefined) {
    console.log("skipped: needs root to run a child as another user");
    return;
  }
  const name = uniqueName("eacces");
  try {
    Segment.open(name, { size: MiB }).close(); // owned by root, mode 0600
    for (const runtime of RUNTIMES) {
      const result = await other.run(
        { uid: OTHER_UID, gid: OTHER_UID },
        runtime,
        "_segment_child.ts",
        ["open", name],
      );
      const out = lastJson(result.stdout);
      assert.equal(out.code, "EACCES", result.stdout + result.stderr);
      assert.equal(out.errno, 13);
      assert.equal(out.syscall, "shm_open");
      assert.equal(out.message, `Cannot open store "${name}": permission denied (EACCES)`);
    }
  } finally {
    Segment.unlink(name);
    other.remove();
  }
});

test("Segment is shared by Deno, Bun and Node processes: each sees what another wrote", async () => {
  const name = uniqueName("cross");
  try {
    using segment = Segment.open(name, { size: MiB });
    const pairs = [["deno", "bun"], ["bun", "node"], ["node", "deno"]] as const;
    for (const [i, [writer, reader]] of pairs.entries()) {
      const offset = String(5000 + i);
      await run(writer, "_segment_child.ts", ["write", name, offset, String(11 * (i + 1))]);
      assert.equal(
        lastJson((await run(reader, "_segment_child.ts", ["read", name, offset])).stdout).read,
        11 * (i + 1),
        `${writer} -> ${reader}`,
      );
    }
    assert.deepEqual([...new Uint8Array(segment.buffer, 5000, 3)], [11, 22, 33]);
  } finally {
    Segment.unlink(name);
  }
});

test("Segment.lock held by another process blocks until that process releases it", async () => {
  for (const runtime of RUNTIMES) {
    const name = uniqueName("lock");
    try {
      using segment = Segment.open(name, { size: MiB });
      const child = start(runtime, "_segment_child.ts", ["hold", name, "300", "7000", "99"]);
      await child.waitForLine((line) => line.includes("locked"));
      assert.equal(segment.tryLock(), false);
      assert.equal(segment.tryLock(false), false);
      segment.lock(); // blocks until the child writes its byte and unlocks
      assert.equal(new Uint8Array(segment.buffer)[7000], 99);
      segment.unlock();
      assert.equal((await child.exited).code, 0);
    } finally {
      Segment.unlink(name);
    }
  }
});

test("Segment.lock is free again after its holder is killed with SIGKILL", async () => {
  for (const runtime of RUNTIMES) {
    const name = uniqueName("killed");
    try {
      using segment = Segment.open(name, { size: MiB });
      const child = start(runtime, "_segment_child.ts", ["die-holding", name]);
      await child.waitForLine((line) => line.includes("locked"));
      assert.equal(segment.tryLock(), false);
      child.kill("SIGKILL");
      await child.exited;
      // The kernel dropped the dead holder's lock; poll rather than block so a bug fails fast.
      const deadline = Date.now() + 10_000;
      while (!segment.tryLock() && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 10));
      }
      assert.ok(Date.now() < deadline, "lock still held after its holder died");
      segment.unlock();
    } finally {
      Segment.unlink(name);
    }
  }
});

test("Segment.open from six processes at once ends with one creator and one header", async () => {
  const name = uniqueName("race");
  try {
    for (let round = 0; round < 3; round++) {
      Segment.unlink(name);
      const children = [0, 1, 2, 3, 4, 5].map((i) =>
        start(RUNTIMES[i % RUNTIMES.length]!, "_segment_child.ts", ["open", name, String(2 * MiB)])
      );
      const results = await Promise.all(children.map((c) => c.exited));
      const outs = results.map((r) => lastJson(r.stdout));
      for (const out of outs) assert.equal(out.error, undefined, JSON.stringify(out));
      assert.equal(outs.filter((o) => o.created).length, 1, JSON.stringify(outs));
      assert.equal(new Set(outs.map((o) => o.createdAt)).size, 1, JSON.stringify(outs));
      using segment = Segment.open(name, { size: MiB });
      assert.equal(segment.size, 2 * MiB);
      assert.equal(new DataView(segment.buffer).getUint32(SEG_MAGIC, true), MAGIC);
    }
  } finally {
    Segment.unlink(name);
  }
});
