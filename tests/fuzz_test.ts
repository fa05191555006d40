// Damaged segments: random bytes flipped in the headers, the heap's control block, the
// directory, entry headers and block headers of a populated store, then the whole public API
// run over it, in a child process of this runtime (so that a crash or a hang is seen as one).
// The work and the checks are in _fuzz_child.ts; this file runs it over fixed seeds.
import assert from "node:assert/strict";
import { runtime, test } from "./_harness.ts";
import { type ChildRuntime, start, uniqueName } from "./_spawn.ts";

/** 4 seeds × 2,500 cases: 10,000 damaged segments on each runtime. */
const SEEDS = [1, 2, 3, 4];
const CASES_PER_SEED = 2_500;
/** Far above the few seconds a seed takes: past this the child is hung. */
const HANG_MS = 120_000;

interface FuzzReport {
  cases: number;
  operations: number;
  outcomes: Record<string, number>;
  failures: string[];
  maxCaseMs: number;
  totalMs: number;
}

test(
  `Memalloc over damaged segments: ${
    SEEDS.length * CASES_PER_SEED
  } cases end in a value or a MemallocError, damage never spreads, and a repair leaves verify() clean`,
  async () => {
    const totals: Record<string, number> = {};
    for (const seed of SEEDS) {
      const child = start(runtime as ChildRuntime, "_fuzz_child.ts", [
        uniqueName("fuzz"),
        String(seed),
        String(CASES_PER_SEED),
      ]);
      const timer = setTimeout(() => child.kill(), HANG_MS);
      const { code, signal, stdout, stderr } = await child.exited;
      clearTimeout(timer);
      assert.equal(
        code,
        0,
        `seed ${seed}: the child ended with ${code ?? signal}${
          signal === "SIGKILL" ? ` (hung for ${HANG_MS} ms)` : ""
        }:\n${stdout}\n${stderr}`,
      );
      const report = JSON.parse(stdout.trim().split("\n").at(-1)!) as FuzzReport;
      assert.deepEqual(report.failures, [], `seed ${seed}`);
      assert.equal(report.cases, CASES_PER_SEED);
      for (const [key, n] of Object.entries(report.outcomes)) totals[key] = (totals[key] ?? 0) + n;
      // Every case either opened (and then ended clean after a repair) or was refused.
      const refused = Object.entries(report.outcomes)
        .filter(([key]) => key.startsWith("open refused"))
        .reduce((sum, [, n]) => sum + n, 0);
      assert.equal(report.outcomes["opened"]! + refused, CASES_PER_SEED, `seed ${seed}`);
      assert.equal(
        report.outcomes["clean after repair"],
        report.outcomes["opened"],
        `seed ${seed}`,
      );
    }
    // The damage was real: verify() saw it, operations repaired it, some opens were refused.
    assert.ok(totals["damage seen by verify"]! > 1000, JSON.stringify(totals));
    assert.ok(totals["repaired by an operation"]! > 100, JSON.stringify(totals));
    assert.ok(totals["open refused: ERR_MEMALLOC_FORMAT"]! > 0, JSON.stringify(totals));
    assert.ok(totals["open refused: ERR_MEMALLOC_VERSION"]! > 0, JSON.stringify(totals));
    // Damage to the lock's mutex was found and the mutex initialised again.
    assert.ok(totals["damaged mutex renewed"]! > 0, JSON.stringify(totals));
    console.log(`fuzz (${runtime}): ${JSON.stringify(totals)}`);
  },
  { timeout: SEEDS.length * HANG_MS },
);
