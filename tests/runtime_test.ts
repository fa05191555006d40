import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";
import { MemallocError } from "../errors.ts";
import { platform } from "../ffi/runtime.ts";
import { platformError } from "../ffi/sys.ts";
import { test } from "./_harness.ts";
import { NODE_FLAGS, run, runtimeBinary, uniqueName } from "./_spawn.ts";

const lastJson = (stdout: string) => JSON.parse(stdout.trim().split("\n").at(-1)!);
const ROOT = fileURLToPath(new URL("..", import.meta.url));
const CHILD = fileURLToPath(new URL("./_runtime_child.ts", import.meta.url));

/** The major and full version of a node binary, or `undefined` when it does not run. */
function nodeVersion(binary: string): { major: number; version: string } | undefined {
  const result = spawnSync(binary, ["--version"], { encoding: "utf8" });
  if (result.status !== 0) return undefined;
  const version = result.stdout.trim().replace(/^v/, "");
  return { major: Number(version.split(".")[0]), version };
}

const node26 = nodeVersion(runtimeBinary("node"));
/** A Node.js older than 26 on this machine (the system's), to show what it says. */
const oldNode = ["/usr/bin/node", "/usr/local/bin/node"]
  .map((binary) => ({ binary, found: existsSync(binary) ? nodeVersion(binary) : undefined }))
  .find(({ found }) => found !== undefined && found.major < 26);

/** Runs the child under `command` on a new store name; returns its report and the name. */
async function attemptUnder(command: string[]) {
  const name = uniqueName("runtime");
  const result = await run("node", "_runtime_child.ts", [name], {
    command: [...command, name],
    allowFailure: true,
  });
  return { name, report: lastJson(result.stdout), stderr: result.stderr };
}

function assertRefused(report: Record<string, unknown>, name: string, says: RegExp): void {
  assert.equal(report.error, "MemallocError", JSON.stringify(report));
  assert.equal(report.code, "ERR_MEMALLOC_RUNTIME");
  assert.match(String(report.message), says);
  assert.equal(existsSync(`/dev/shm/memalloc.${name}`), false, "nothing was created");
}

test(
  "Memalloc on Node 26 started with --no-experimental-ffi fails with ERR_MEMALLOC_RUNTIME naming the version and the flag, and creates nothing",
  async () => {
    const { name, report } = await attemptUnder([
      runtimeBinary("node"),
      "--no-experimental-ffi",
      "--disable-warning=ExperimentalWarning",
      CHILD,
    ]);
    assertRefused(
      report,
      name,
      new RegExp(`node:ffi is not available on Node\\.js ${node26!.version}: .*--experimental-ffi`),
    );
  },
  { ignore: node26 === undefined || node26.major < 26 },
);

test(
  "Memalloc on Node 26 under the permission model without --allow-ffi fails with ERR_MEMALLOC_RUNTIME naming --allow-ffi, and creates nothing",
  async () => {
    const { name, report } = await attemptUnder([
      runtimeBinary("node"),
      ...NODE_FLAGS,
      "--permission",
      `--allow-fs-read=${ROOT}*`,
      CHILD,
    ]);
    assertRefused(report, name, /the permission model denies FFI .*: add --allow-ffi/);
  },
  { ignore: node26 === undefined || node26.major < 26 },
);

test("Memalloc on Deno without --allow-ffi fails with ERR_MEMALLOC_RUNTIME naming the flag, and creates nothing", async () => {
  const name = uniqueName("runtime");
  const result = await run("deno", "_runtime_child.ts", [name], {
    denoFlags: [],
    allowFailure: true,
  });
  assertRefused(lastJson(result.stdout), name, /run Deno with --allow-ffi/);
});

test(
  oldNode === undefined
    ? "Memalloc on a Node.js older than 26 fails with ERR_MEMALLOC_RUNTIME (skipped: no such node here)"
    : `Memalloc on Node.js ${
      oldNode.found!.version
    } (${oldNode.binary}) fails with ERR_MEMALLOC_RUNTIME naming the version needed, and creates nothing`,
  async () => {
    // That node cannot strip types: it runs the child bundled into JavaScript, as a user of the
    // npm package would run the built package.
    const dir = mkdtempSync("/tmp/memalloc-old-node-");
    try {
      const outfile = join(dir, "child.mjs");
      await esbuild.build({
        entryPoints: [CHILD],
        outfile,
        bundle: true,
        format: "esm",
        platform: "node",
        target: "node18",
        logLevel: "error",
      });
      await esbuild.stop();
      const { name, report } = await attemptUnder([oldNode!.binary, outfile]);
      assertRefused(
        report,
        name,
        new RegExp(
          `this is Node\\.js ${oldNode!.found!.version}, .*upgrade to Node\\.js 26\\.1 or later`,
        ),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
  { ignore: oldNode === undefined },
);

test("memalloc on macOS, Windows or a BSD fails with ERR_MEMALLOC_PLATFORM saying it needs Linux; on Linux it loads", () => {
  assert.equal(platformError("linux"), undefined);
  for (const os of ["darwin", "win32", "freebsd"]) {
    const error = platformError(os)!;
    assert.ok(error instanceof MemallocError);
    assert.equal(error.code, "ERR_MEMALLOC_PLATFORM");
    assert.match(error.message, new RegExp(`runs on Linux only .*this is ${os}: run it on Linux`));
  }
  assert.equal(platform, "linux", "these tests run on Linux");
});
