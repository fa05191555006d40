import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Memalloc } from "../mod.ts";
import { test } from "./_harness.ts";
import { run, RUNTIMES, uniqueName } from "./_spawn.ts";

const lastJson = (stdout: string) => JSON.parse(stdout.trim().split("\n").at(-1)!);

test("defaultStoreName is MEMALLOC_STORE when set, else default", async () => {
  for (const runtime of RUNTIMES) {
    const name = uniqueName("env");
    const named = lastJson(
      (await run(runtime, "_default_child.ts", ["name"], {
        env: { MEMALLOC_STORE: name },
      })).stdout,
    );
    assert.deepEqual(named, { result: name }, runtime);
    const unset = lastJson(
      (await run(runtime, "_default_child.ts", ["name"], {
        env: { MEMALLOC_STORE: "" },
      })).stdout,
    );
    assert.deepEqual(unset, { result: "default" }, runtime);
    assert.equal(Memalloc.exists(name), false, "asking for the name opened nothing");
  }
});

test("defaultStoreName throws a TypeError or RangeError naming MEMALLOC_STORE when it holds no store name", async () => {
  for (const runtime of RUNTIMES) {
    for (
      const [value, type, message] of [
        [
          "a/b",
          "TypeError",
          'MEMALLOC_STORE does not name a store: Store name "a/b" must not contain "/"',
        ],
        ["x".repeat(300), "RangeError", "MEMALLOC_STORE does not name a store: Store name"],
      ] as const
    ) {
      const out = lastJson(
        (await run(runtime, "_default_child.ts", ["name"], {
          env: { MEMALLOC_STORE: value },
        })).stdout,
      );
      assert.equal(out.error, type, `${runtime}: ${JSON.stringify(out)}`);
      assert.ok(out.message.startsWith(message), `${runtime}: ${out.message}`);
    }
  }
});

test("setDefaultStore chooses the module functions' store and its options; once open, another is ERR_MEMALLOC_DEFAULT_OPEN and nothing changes", async () => {
  for (const runtime of RUNTIMES) {
    const name = uniqueName("choose");
    const other = uniqueName("other");
    const envName = uniqueName("env-ignored");
    try {
      const out = lastJson(
        (await run(runtime, "_default_child.ts", ["choose", name, other], {
          env: { MEMALLOC_STORE: envName },
        })).stdout,
      );
      const at = `${runtime}: ${JSON.stringify(out)}`;
      assert.equal(out.before, envName, at);
      assert.deepEqual(out.rechosen, { result: null }, at);
      assert.equal(out.after, name, at);
      assert.deepEqual(out.store, [name, 1 << 20, 0.5], at);
      assert.equal(out.read, "v", at);
      assert.deepEqual(out.again, { result: null }, at);
      const inUse = {
        error: "MemallocError",
        code: "ERR_MEMALLOC_DEFAULT_OPEN",
      };
      for (const [label, chosen] of [[other, out.other], [name, out.otherOptions]]) {
        assert.deepEqual(
          { error: chosen.error, code: chosen.code },
          inUse,
          `${at}: setDefaultStore("${label}") after first use`,
        );
        assert.equal(
          chosen.message,
          `Cannot set the default store to "${label}": the default store "${name}" is already open; call setDefaultStore() before the first module-level call`,
        );
      }
      assert.equal(out.badName.error, "TypeError", at);
      assert.equal(out.badOption.error, "RangeError", at);
      assert.equal(out.stillRead, "v", at);
      assert.equal(out.otherExists, false, at);
      assert.equal(Memalloc.exists(envName), false, `${at}: MEMALLOC_STORE's store was opened`);
      using store = Memalloc.open(name);
      assert.equal(store.read("k"), "v");
    } finally {
      Memalloc.unlink(name);
    }
  }
});

test("Deno runs the whole API with exactly --allow-ffi: no other permission is asked for, and MEMALLOC_STORE is not read", async () => {
  const dir = mkdtempSync(join(tmpdir(), "memalloc-audit-"));
  try {
    const name = uniqueName("ffi-only");
    const audit = join(dir, "audit.jsonl");
    const result = await run("deno", "_default_child.ts", ["whole-api", name], {
      denoFlags: ["--allow-ffi"],
      // Deno logs every permission check here, granted or not: a denied check that was caught
      // (which would prompt in a terminal) shows up too.
      env: { DENO_AUDIT_PERMISSIONS: audit, MEMALLOC_STORE: uniqueName("not-read") },
    });
    const out = lastJson(result.stdout);
    assert.deepEqual(out.done, ["Memalloc", "Foobar123", "true", "true"], result.stderr);
    assert.deepEqual(out.envName, { result: "default" }, "MEMALLOC_STORE was read");
    assert.equal(result.stderr, "");
    const checks = readFileSync(audit, "utf8").trim().split("\n").map((line) => JSON.parse(line));
    assert.ok(checks.length > 0, "the audit log is empty: DENO_AUDIT_PERMISSIONS did nothing");
    const others = checks.filter((check) => check.permission !== "ffi");
    assert.deepEqual(others, [], "permissions besides ffi were checked");
    assert.equal(Memalloc.exists(name), false);

    // With --allow-env for it, MEMALLOC_STORE is read.
    const envName = uniqueName("read");
    const allowed = await run("deno", "_default_child.ts", ["name"], {
      denoFlags: ["--allow-ffi", "--allow-env=MEMALLOC_STORE"],
      env: { MEMALLOC_STORE: envName },
    });
    assert.deepEqual(lastJson(allowed.stdout), { result: envName });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
