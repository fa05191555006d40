import assert from "node:assert/strict";
import { chmodSync, readFileSync, statSync } from "node:fs";
import { Memalloc, MemallocError } from "../mod.ts";
import { test } from "./_harness.ts";
import { type ChildResult, OTHER_UID, type OtherUser, prepareOtherUser } from "./_other_user.ts";
import { run, RUNTIMES, uniqueName } from "./_spawn.ts";

const KiB = 1024;
const lastJson = (stdout: string) => JSON.parse(stdout.trim().split("\n").at(-1)!);
const segmentBytes = (store: string) => readFileSync(`/dev/shm/memalloc.${store}`);
const nobody = { uid: OTHER_UID, gid: OTHER_UID };
/** A group id that nobody on the machine has: the tests give it to a child with setpriv. */
const SHARED_GID = 4242;
const untrusted = (name: string, why: string, trusted: string) =>
  `Cannot open store "${name}": ${why}, so what it holds cannot be trusted; open it with ${trusted} if that is meant, or else remove it (Memalloc.unlink, as its owner or root) or use another name`;

/** Runs `body` with a folder of copies that uid 65534 can run, or skips when not root. */
async function asOtherUser(body: (other: OtherUser) => Promise<void>): Promise<void> {
  const other = await prepareOtherUser(["_trust_child.ts"]);
  if (other === undefined) {
    console.log("skipped: needs root to run a child as another user");
    return;
  }
  try {
    await body(other);
  } finally {
    other.remove();
  }
}

test("Memalloc.open refuses a store planted by another user with ERR_MEMALLOC_UNTRUSTED naming the owner and mode, reading and writing nothing", async () => {
  await asOtherUser(async (other) => {
    const name = uniqueName("planted");
    try {
      const planted: ChildResult = await other.run(nobody, "bun", "_trust_child.ts", [
        "plant",
        name,
        JSON.stringify({ mode: 0o666 }),
      ]);
      assert.deepEqual(lastJson(planted.stdout), { result: "planted" }, planted.stderr);
      const bytes = segmentBytes(name);
      for (const runtime of RUNTIMES) {
        const out = lastJson((await run(runtime, "_trust_child.ts", ["open", name, "{}"])).stdout);
        assert.deepEqual(out, {
          error: "MemallocError",
          code: "ERR_MEMALLOC_UNTRUSTED",
          errno: 0,
          store: name,
          message: untrusted(
            name,
            "it is owned by uid 65534 (nobody) (mode 0o666), not by this process's user, uid 0 (root)",
            "trust: { owners: [65534] }",
          ),
        }, runtime);
        // Trusting the owner is not enough while every user may write to it.
        const owner = lastJson(
          (await run(runtime, "_trust_child.ts", [
            "open",
            name,
            JSON.stringify({ trust: { owners: [OTHER_UID] } }),
          ])).stdout,
        );
        assert.deepEqual(owner, {
          error: "MemallocError",
          code: "ERR_MEMALLOC_UNTRUSTED",
          errno: 0,
          store: name,
          message: untrusted(name, "every user may write to it (mode 0o666)", "mode: 0o666"),
        }, runtime);
      }
      assert.throws(() => Memalloc.open(name), (error) => {
        assert.ok(error instanceof MemallocError);
        assert.equal(error.code, "ERR_MEMALLOC_UNTRUSTED");
        assert.equal(error.store, name);
        return true;
      });
      assert.ok(segmentBytes(name).equals(bytes), "a refused open changed the segment");
      // Asked for by name, the same store opens.
      const trusted = lastJson(
        (await run("deno", "_trust_child.ts", [
          "open",
          name,
          JSON.stringify({ mode: 0o666, trust: { owners: [OTHER_UID] } }),
        ])).stdout,
      );
      assert.deepEqual(trusted, {
        result: { config: { isAdmin: true, redirect: "http://evil.example" } },
      });
    } finally {
      Memalloc.unlink(name);
    }
  });
});

test("Memalloc.open of the default store squatted by another user fails with ERR_MEMALLOC_UNTRUSTED on the first module-level call", async () => {
  await asOtherUser(async (other) => {
    const name = uniqueName("squatted");
    try {
      const planted = await other.run(nobody, "deno", "_trust_child.ts", [
        "plant",
        name,
        JSON.stringify({ mode: 0o666 }),
      ]);
      assert.deepEqual(lastJson(planted.stdout), { result: "planted" }, planted.stderr);
      for (const runtime of RUNTIMES) {
        const out = lastJson(
          (await run(runtime, "_trust_child.ts", ["default-read", name], {
            env: { MEMALLOC_STORE: name },
          })).stdout,
        );
        assert.equal(out.code, "ERR_MEMALLOC_UNTRUSTED", `${runtime}: ${JSON.stringify(out)}`);
        assert.match(out.message, /it is owned by uid 65534 \(nobody\) \(mode 0o666\)/);
        assert.equal(out.result, undefined, "the planted config was read");
      }
    } finally {
      Memalloc.unlink(name);
    }
  });
});

test("Memalloc.open with trust.group shares a store through a group, in both directions", async () => {
  await asOtherUser(async (other) => {
    const member = { ...nobody, groups: [SHARED_GID] };
    const shared = { mode: 0o660, trust: { group: SHARED_GID } };
    const byRoot = uniqueName("group-root");
    const byNobody = uniqueName("group-nobody");
    try {
      // Made by root for the group: uid 65534, a member, opens it trusting root.
      using store = Memalloc.open(byRoot, { maxMemory: 64 * KiB, ...shared });
      const stat = statSync(`/dev/shm/memalloc.${byRoot}`);
      assert.deepEqual([stat.uid, stat.gid, stat.mode & 0o777], [0, SHARED_GID, 0o660]);
      store.write("config", { from: "root" });
      for (const runtime of RUNTIMES) {
        const trusting = { trust: { owners: [0], group: SHARED_GID } };
        const out = lastJson(
          (await other.run(member, runtime, "_trust_child.ts", [
            "open",
            byRoot,
            JSON.stringify(trusting),
          ])).stdout,
        );
        assert.deepEqual(out, { result: { config: { from: "root" } } }, runtime);
        assert.equal(store.read("written-by"), OTHER_UID);
        store.delete("written-by");
        // Without the option, the member refuses a store root owns.
        const refused = lastJson(
          (await other.run(member, runtime, "_trust_child.ts", ["open", byRoot, "{}"])).stdout,
        );
        assert.equal(refused.code, "ERR_MEMALLOC_UNTRUSTED", `${runtime}: ${refused.message}`);
        assert.match(refused.message, /owned by uid 0 \(root\) \(mode 0o660\)/);
      }

      // Made by uid 65534 for the group: root opens it trusting that user and that group.
      const made = await other.run(member, "bun", "_trust_child.ts", [
        "plant",
        byNobody,
        JSON.stringify(shared),
      ]);
      assert.deepEqual(lastJson(made.stdout), { result: "planted" }, made.stderr);
      const stat2 = statSync(`/dev/shm/memalloc.${byNobody}`);
      assert.deepEqual([stat2.uid, stat2.gid, stat2.mode & 0o777], [OTHER_UID, SHARED_GID, 0o660]);
      const owners = [OTHER_UID];
      using theirs = Memalloc.open(byNobody, { trust: { owners, group: SHARED_GID } });
      assert.equal(theirs.read<{ isAdmin: boolean }>("config")?.isAdmin, true);
      // Trusting the owner but not the group: its group may write to it, so it is refused.
      assert.throws(() => Memalloc.open(byNobody, { trust: { owners } }), {
        name: "MemallocError",
        message: untrusted(
          byNobody,
          `the members of group ${SHARED_GID} may write to it (mode 0o660)`,
          `trust: { group: ${SHARED_GID} }`,
        ),
      });
      // Another group named: the same.
      assert.throws(
        () => Memalloc.open(byNobody, { trust: { owners, group: SHARED_GID + 1 } }),
        { name: "MemallocError", message: /members of group 4242 may write/ },
      );
    } finally {
      Memalloc.unlink(byRoot);
      Memalloc.unlink(byNobody);
    }
  });
});

test("Memalloc.open refuses the caller's own store once its group or every user may write to it, unless mode allows that", () => {
  const name = uniqueName("own-writable");
  try {
    Memalloc.open(name, { maxMemory: 64 * KiB }).close();
    for (
      const [bits, why, allowed] of [
        [0o620, "the members of group", { mode: 0o660 }],
        [0o602, "every user may write", { mode: 0o666 }],
      ] as const
    ) {
      chmodSync(`/dev/shm/memalloc.${name}`, bits);
      assert.throws(() => Memalloc.open(name), (error) => {
        assert.ok(error instanceof MemallocError, String(error));
        assert.equal(error.code, "ERR_MEMALLOC_UNTRUSTED");
        assert.ok(error.message.includes(why), error.message);
        assert.ok(error.message.includes(`mode 0o${bits.toString(8)}`), error.message);
        return true;
      });
      Memalloc.open(name, allowed).close();
    }
    chmodSync(`/dev/shm/memalloc.${name}`, 0o644); // readable by others, writable by no one else
    Memalloc.open(name).close();
  } finally {
    Memalloc.unlink(name);
  }
});

test("Memalloc.open rejects a malformed trust option with a TypeError or RangeError before touching anything", () => {
  const name = uniqueName("trust-option");
  const cases: Array<[unknown, ErrorConstructor, string]> = [
    ["root", TypeError, 'trust must be an object, got "root"'],
    [[0], TypeError, "trust must be an object, got Array"],
    [{ users: [0] }, TypeError, 'Unknown trust option "users": the options are owners and group'],
    [{ owners: 0 }, TypeError, "trust.owners must be an array of user ids, got 0"],
    [{ owners: ["0"] }, TypeError, 'trust.owners: a user id must be an integer id, got "0"'],
    [{ owners: [-1] }, RangeError, "trust.owners: a user id -1 is out of range: 0 to 4294967294"],
    [{ group: 1.5 }, TypeError, "trust.group must be an integer id, got 1.5"],
    [{ group: 2 ** 32 }, RangeError, "trust.group 4294967296 is out of range: 0 to 4294967294"],
  ];
  for (const [trust, type, message] of cases) {
    assert.throws(
      () => Memalloc.open(name, { maxMemory: 64 * KiB, trust } as never),
      (error) => error instanceof type && (error as Error).message === message,
      `trust ${JSON.stringify(trust)}`,
    );
  }
  assert.equal(Memalloc.exists(name), false);
});
