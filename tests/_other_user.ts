/**
 * Runs test children as another user. That user may not be able to read the checkout (a clone
 * in a `mktemp -d` folder is 0700), so each child runs from a copy it can read: the script
 * bundled with esbuild into one file, and the runtime's binary linked (or copied) beside it, in
 * a fresh folder under /tmp that {@linkcode OtherUser.remove} deletes.
 *
 * @module
 */
import {
  chmodSync,
  copyFileSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  realpathSync,
  rmSync,
  statSync,
} from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";
import {
  type ChildRuntime,
  isRoot,
  NODE_TEST_FLAGS,
  run,
  runtimeBinary,
  RUNTIMES,
} from "./_spawn.ts";

/** The user the children run as: `nobody` on Debian. */
export const OTHER_UID = 65534;

/** Who a child runs as. */
export interface Identity {
  uid: number;
  gid: number;
  /** Supplementary groups (default none). */
  groups?: number[];
}

/** What a child run as another user printed, and how it ended. */
export interface ChildResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A folder of runnable copies; see the module documentation. */
export interface OtherUser {
  /** Runs `script` (relative to tests/) as `who`; resolves with its output and exit code. */
  run(
    who: Identity,
    runtime: ChildRuntime,
    script: string,
    args: string[],
    env?: Record<string, string>,
  ): Promise<ChildResult>;
  /** Deletes the folder. */
  remove(): void;
}

/**
 * Bundles `scripts` (relative to tests/) and links every runtime into a new folder that every
 * user can read. Returns `undefined` when this process cannot run children as another user
 * (it is not root).
 */
export async function prepareOtherUser(scripts: string[]): Promise<OtherUser | undefined> {
  if (!isRoot()) return undefined;
  const dir = mkdtempSync("/tmp/memalloc-other-user-");
  try {
    chmodSync(dir, 0o755);
    const home = join(dir, "home");
    mkdirSync(home, { mode: 0o777 });
    chmodSync(home, 0o777); // the child's HOME and DENO_DIR: it writes caches there
    for (const script of scripts) {
      await esbuild.build({
        entryPoints: [fileURLToPath(new URL(script, import.meta.url))],
        outfile: join(dir, `${script}.mjs`),
        bundle: true,
        format: "esm",
        platform: "node",
        target: "esnext",
        logLevel: "error",
      });
    }
    for (const runtime of RUNTIMES) {
      const binary = realpathSync(runtimeBinary(runtime));
      const copy = join(dir, runtime);
      try {
        linkSync(binary, copy); // same file system: no copy
      } catch {
        copyFileSync(binary, copy);
      }
      if ((statSync(copy).mode & 0o005) !== 0o005) chmodSync(copy, 0o755);
    }
    await esbuild.stop();
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    run(who, runtime, script, args, env = {}) {
      const groups = who.groups?.length ? [`--groups=${who.groups.join(",")}`] : ["--clear-groups"];
      const path = join(dir, `${script}.mjs`);
      return run(runtime, script, args, {
        command: runtime === "deno"
          ? [join(dir, "deno"), "run", "-A", "--quiet", path, ...args]
          : runtime === "node"
          ? [join(dir, "node"), ...NODE_TEST_FLAGS, path, ...args]
          : [join(dir, "bun"), "run", path, ...args],
        wrapper: ["setpriv", `--reuid=${who.uid}`, `--regid=${who.gid}`, ...groups],
        env: { HOME: join(dir, "home"), DENO_DIR: join(dir, "home", "deno"), ...env },
        cwd: dir,
        allowFailure: true,
      });
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
