/**
 * Starts real Deno, Bun and Node.js processes for the multi-process tests, through
 * `node:child_process` (all three runtimes implement it).
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import type { Readable } from "node:stream";
import { fileURLToPath } from "node:url";

/** The runtimes every multi-process test runs its children on. */
export const RUNTIMES = ["deno", "bun", "node"] as const;
/** One of {@linkcode RUNTIMES}. */
export type ChildRuntime = typeof RUNTIMES[number];

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** The runtime's binary from the project's own node_modules, or from PATH. */
export function runtimeBinary(runtime: ChildRuntime): string {
  const local = `${ROOT}node_modules/.bin/${runtime}`;
  return existsSync(local) ? local : runtime;
}

/**
 * Node's flags for memalloc: `--experimental-ffi` for the Node 26 releases that keep `node:ffi`
 * behind it (26.10 and 26.12 load it without), and no experimental warning on every child's
 * stderr.
 */
export const NODE_FLAGS: readonly string[] = [
  "--experimental-ffi",
  "--disable-warning=ExperimentalWarning",
];

/**
 * {@linkcode NODE_FLAGS} for the tests' Node processes, and V8's `--no-concurrent-recompilation`:
 * Node 26.12 aborts or crashes, now and then, when a process exits while TurboFan is still
 * optimizing, on its background thread, a function that calls node:ffi (SIGTRAP "Check failed:
 * FastApiCallNode::ArityForArgc" or "unreachable code" in `RunCompilationJob`, or SIGSEGV) after
 * the process has done all its work: measured here, 3 to 16 in 100 runs of a 20,000-lock loop,
 * none with this flag, and none when the process lives 300 ms longer. The tests check memalloc,
 * not that Node bug (README "Node.js"), so their processes compile on the main thread.
 */
export const NODE_TEST_FLAGS: readonly string[] = [...NODE_FLAGS, "--no-concurrent-recompilation"];

/**
 * The command line that runs a script under a runtime: under Deno with `denoFlags` (default
 * `-A`, every permission); under Node with {@linkcode NODE_FLAGS}, the TypeScript run by type
 * stripping.
 */
export function commandFor(
  runtime: ChildRuntime,
  script: string,
  args: string[],
  denoFlags: readonly string[] = ["-A"],
): string[] {
  const path = fileURLToPath(new URL(script, import.meta.url));
  if (runtime === "deno") {
    return [runtimeBinary("deno"), "run", ...denoFlags, "--quiet", path, ...args];
  }
  if (runtime === "node") return [runtimeBinary("node"), ...NODE_TEST_FLAGS, path, ...args];
  return [runtimeBinary("bun"), "run", path, ...args];
}

/**
 * Calls `onLine` with each whole line a child writes to `stream` (UTF-8, without the newline);
 * a last line without a newline is not reported.
 */
export function onLines(stream: Readable, onLine: (line: string) => void): void {
  let pending = "";
  stream.setEncoding("utf8");
  stream.on("data", (chunk: string) => {
    pending += chunk;
    let newline;
    while ((newline = pending.indexOf("\n")) >= 0) {
      const line = pending.slice(0, newline);
      pending = pending.slice(newline + 1);
      onLine(line);
    }
  });
}

/** A child process with line-by-line access to its standard output. */
export interface Child {
  readonly process: ChildProcess;
  readonly pid: number;
  /** Resolves with the first stdout line that satisfies `match` (rejects on exit or time-out). */
  waitForLine(match: (line: string) => boolean, timeoutMs?: number): Promise<string>;
  /** Resolves when the process exits, with its exit code (or signal name) and all output. */
  readonly exited: Promise<
    { code: number | null; signal: string | null; stdout: string; stderr: string }
  >;
  kill(signal?: NodeJS.Signals): void;
}

/** How {@linkcode start} and {@linkcode run} start a child. */
export interface SpawnOptions {
  /** A command the child's command line follows (`setpriv ...`, `unshare ...`). */
  wrapper?: string[];
  /** Variables added to this process's environment. */
  env?: Record<string, string>;
  /** Deno's flags instead of `-A`. */
  denoFlags?: string[];
  /** The whole command line instead of {@linkcode commandFor}'s. */
  command?: string[];
  /** The child's working directory. */
  cwd?: string;
}

/** Starts `script` (relative to tests/) under `runtime`, optionally behind a wrapper command. */
export function start(
  runtime: ChildRuntime,
  script: string,
  args: string[],
  options: SpawnOptions = {},
): Child {
  const argv = [
    ...(options.wrapper ?? []),
    ...(options.command ?? commandFor(runtime, script, args, options.denoFlags)),
  ];
  const child = spawn(argv[0]!, argv.slice(1), {
    stdio: ["ignore", "pipe", "pipe"],
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    env: { ...process.env, NO_COLOR: "1", ...options.env },
  });
  let stdout = "";
  let stderr = "";
  const lines: string[] = [];
  const waiters: Array<() => void> = [];
  child.stdout!.on("data", (chunk: string) => (stdout += chunk)); // first: before any wake-up
  onLines(child.stdout!, (line) => {
    lines.push(line);
    for (const wake of waiters.splice(0)) wake();
  });
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (chunk: string) => (stderr += chunk));
  const exited = new Promise<
    { code: number | null; signal: string | null; stdout: string; stderr: string }
  >((resolve) => {
    child.on("close", (code, signal) => {
      for (const wake of waiters.splice(0)) wake();
      resolve({ code, signal, stdout, stderr });
    });
  });
  let done = false;
  exited.then(() => (done = true));

  return {
    process: child,
    pid: child.pid ?? -1,
    exited,
    kill(signal = "SIGKILL") {
      // process.kill, not child.kill: Deno's child.kill drops a signal sent after a SIGSTOP,
      // and then never reports the exit.
      try {
        if (!done && child.pid !== undefined) process.kill(child.pid, signal);
      } catch {
        // Already gone.
      }
    },
    waitForLine(match, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        let seen = 0;
        const timer = setTimeout(
          () =>
            reject(
              new Error(
                `No matching line from ${argv.join(" ")} in ${timeoutMs} ms:\n${stdout}\n${stderr}`,
              ),
            ),
          timeoutMs,
        );
        const check = () => {
          for (; seen < lines.length; seen++) {
            if (match(lines[seen]!)) {
              clearTimeout(timer);
              return resolve(lines[seen]!);
            }
          }
          if (done) {
            clearTimeout(timer);
            return reject(new Error(`${argv.join(" ")} exited first:\n${stdout}\n${stderr}`));
          }
          waiters.push(check);
        };
        check();
      });
    },
  };
}

/** Runs a script to completion; rejects unless it exits 0. Returns its stdout. */
export async function run(
  runtime: ChildRuntime,
  script: string,
  args: string[],
  options: SpawnOptions & { allowFailure?: boolean } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const result = await start(runtime, script, args, options).exited;
  if (result.code !== 0 && !options.allowFailure) {
    throw new Error(
      `${runtime} ${script} ${args.join(" ")} exited with ${
        result.code ?? result.signal
      }:\n${result.stdout}\n${result.stderr}`,
    );
  }
  return result;
}

/**
 * The test run's tag: `scripts/test.ts` sets `MEMALLOC_TEST_RUN` for everything it starts, so
 * that its clean-up removes this run's stores and no one else's. A test file run on its own
 * gets a tag of its own.
 */
const RUN = process.env.MEMALLOC_TEST_RUN || Math.random().toString(36).slice(2, 10);

/** A store name no other test, and no other test run, uses: `test-<run>-<prefix>-...`. */
export function uniqueName(prefix: string): string {
  return `test-${RUN}-${prefix}-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
}

/** Whether this process may run commands as another user or in its own mount namespace. */
export function isRoot(): boolean {
  return typeof process.getuid === "function" && process.getuid() === 0;
}
