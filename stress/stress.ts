/**
 * The crash and stress harness: `deno task stress` (or `bun stress/stress.ts`).
 *
 * What it proves: that a memalloc store shared by Deno, Bun and Node processes stays whole while its
 * writers are killed with SIGKILL at random instants, again and again. Readers never see a torn
 * value and never hang, every crash is repaired by the next process that takes the lock, and
 * after the last crash the store verifies clean and every value in it is whole.
 *
 * How:
 * 1. Creation rounds: for each round, a fresh, unlinked store; one Deno and one Bun writer race
 *    to create it, and each dies at a random instant: a quarter of them killed by the harness
 *    during start-up, the rest by a timer thread in the writer itself (`_self_kill.ts`) at a
 *    random microsecond of `Memalloc.open`, which creates the segment and store in about a
 *    millisecond. The harness records what each round left behind (no segment, an empty one, a
 *    sized one without header, a partly written header, a header without a store, a formatted
 *    store), then opens it as a new process would, writes once, and verifies it.
 * 2. Main phase: N writers (`_writer.ts`, Deno, Bun and Node in turn) write self-checking values
 *    (`_value.ts`) of a few bytes to 16 KiB under a pool of names in a small store, so the
 *    allocator splits, merges and evicts constantly; they also overwrite, delete, read back,
 *    clean and purge. M readers (`_reader.ts`, Deno, Bun and Node in turn) read and check values
 *    all the time, timing every read. A killer sends SIGKILL to a writer after random delays
 *    (25 ms on average): 60% of the time it aims at the writer holding the store's lock (the
 *    pid the holder records in the segment header), so that the kill lands in the middle of a mutation; otherwise, or when
 *    no writer holds the lock for 10 ms, at a random writer, which may still be starting or
 *    opening the store. Each killed writer is replaced at once.
 * 3. End: the remaining writers are killed too (one more crash), the readers stop and report,
 *    and the harness opens the store, writes once (the first locker repairs any interrupted
 *    mutation), and requires `verify()` to be empty, every value of the pool to be whole, and
 *    the entry count to match.
 *
 * Hangs are failures: the shared write counter not moving for 10 s while a writer is ready, a
 * reader or the harness's own stats() silent for 10 s, a writer not ready 10 s after it started,
 * or a single read taking over 2 s. The harness's own store calls run in a Worker
 * (`_monitor.ts`), so a lock held forever cannot freeze the harness itself.
 *
 * Every figure printed is measured: kills and their phases by the harness (a kill counts as
 * "while writing" when the writer had printed that it was ready, and as "holding the lock" when
 * the header named it as the holder just before the signal), writes, repairs and evictions
 * from the store's shared counters, reads and torn values from the readers' own counts.
 *
 * A run that did not exercise what it claims fails too: fewer kills than asked, no writes, or
 * (from 50 kills up) no kill while a writer was writing, or not one crash repair.
 *
 * Usage: `deno task stress [options]`; see {@linkcode USAGE}. The last line of output is a
 * one-line verdict; the exit code is 0 only when every check passed (1 when one failed, 2 for a
 * bad command line).
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, openSync, readSync, statSync } from "node:fs";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { MAGIC, SEG_LOCK_HOLDER, SEG_MAGIC, ST_MAGIC, STORE_MAGIC } from "../allocator/layout.ts";
import { Memalloc, type MemallocStats } from "../mod.ts";
import type { CheckResult, MonitorReply, MonitorRequest } from "./_monitor.ts";
import type { ReaderReport } from "./_reader.ts";
import { mulberry32 } from "../tests/_random.ts";
import { type ChildRuntime as Runtime, commandFor, onLines, RUNTIMES } from "../tests/_spawn.ts";

/** The command-line help. */
export const USAGE = `Usage: deno task stress [options]   (or: bun stress/stress.ts [options])

Kills memalloc writers (Deno, Bun and Node) with SIGKILL at random instants while readers check every
value they read, then verifies the store. Exit code 0 only if every check passed.

Options:
  --kills N          kills by the killer in the main phase (default 200)
  --soak             a long run: 100000 kills and 1000 creation rounds, progress every 10 s
  --create-rounds N  creation rounds before the main phase (default 20; 0 to skip)
  --writers N        writer processes alive at once (default 4)
  --readers N        reader processes (default 3: one Deno, one Bun, one Node)
  --interval MS      mean delay between two kills, in ms (default 25)
  --max-memory B     store size in bytes (default 1048576)
  --names N          size of the pool of names (default 256)
  --json             print the summary as one JSON line (before the verdict line)
  --inject KIND      make the run fail on purpose, to check that the harness can fail:
                     "torn": one reader changes one value it read before checking it;
                     "hang": the killer stops (SIGSTOP) a writer holding the lock
  --help             this text`;

/** Settings of one run. */
interface Options {
  kills: number;
  createRounds: number;
  writers: number;
  readers: number;
  intervalMs: number;
  maxMemory: number;
  names: number;
  json: boolean;
  soak: boolean;
  inject: "torn" | "hang" | undefined;
}

/** A bad command line: printed with the usage, exit code 2. */
class UsageError extends Error {}

function parseOptions(args: string[]): Options | "help" {
  const options: Options = {
    kills: 200,
    createRounds: 20,
    writers: 4,
    readers: 3,
    intervalMs: 25,
    maxMemory: 1 << 20,
    names: 256,
    json: false,
    soak: false,
    inject: undefined,
  };
  let kills: number | undefined;
  let createRounds: number | undefined;
  const integer = (flag: string, text: string | undefined, min: number, max: number) => {
    const value = Number(text);
    if (text === undefined || !Number.isInteger(value) || value < min || value > max) {
      throw new UsageError(
        `${flag} needs an integer from ${min} to ${max}, got ${
          text === undefined ? "nothing" : JSON.stringify(text)
        }`,
      );
    }
    return value;
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const [flag, inline] = arg.startsWith("--") && arg.includes("=")
      ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)]
      : [arg, undefined];
    const value = () => inline ?? args[++i];
    switch (flag) {
      case "--help":
      case "-h":
        return "help";
      case "--soak":
        options.soak = true;
        break;
      case "--json":
        options.json = true;
        break;
      case "--kills":
        kills = integer(flag, value(), 1, 1e9);
        break;
      case "--create-rounds":
        createRounds = integer(flag, value(), 0, 1e9);
        break;
      case "--writers":
        options.writers = integer(flag, value(), 1, 64);
        break;
      case "--readers":
        options.readers = integer(flag, value(), 1, 64);
        break;
      case "--interval":
        options.intervalMs = integer(flag, value(), 0, 60_000);
        break;
      case "--max-memory":
        options.maxMemory = integer(flag, value(), 64 * 1024, 2 ** 32);
        break;
      case "--names":
        options.names = integer(flag, value(), 1, 1000);
        break;
      case "--inject": {
        const kind = value();
        if (kind !== "torn" && kind !== "hang") {
          throw new UsageError(`--inject takes "torn" or "hang", got ${JSON.stringify(kind)}`);
        }
        options.inject = kind;
        break;
      }
      default:
        throw new UsageError(`Unknown argument ${JSON.stringify(arg)}`);
    }
  }
  options.kills = kills ?? (options.soak ? 100_000 : 200);
  options.createRounds = createRounds ?? (options.soak ? 1000 : 20);
  return options;
}

// ---------------------------------------------------------------------------------------------
// Child processes

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** How a child process ended. */
interface Exit {
  code: number | null;
  signal: string | null;
}

/** A Deno or Bun child running one of the scripts beside this file, read line by line. */
class Proc {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly spawnedAt: number = performance.now();
  readonly exited: Promise<Exit>;
  exit: Exit | undefined;
  /** Set on the `exit` event: the pid is no longer ours to signal. */
  reaped = false;
  stderr = "";
  lastError: string | undefined;

  readonly id: string;
  readonly runtime: Runtime;

  constructor(
    id: string,
    runtime: Runtime,
    script: string,
    args: string[],
    onLine: (message: Record<string, unknown>) => void,
    stdin: "pipe" | "ignore",
  ) {
    this.id = id;
    this.runtime = runtime;
    const argv = commandFor(runtime, fileURLToPath(new URL(script, import.meta.url)), args);
    this.child = spawn(argv[0]!, argv.slice(1), {
      cwd: ROOT,
      stdio: [stdin, "pipe", "pipe"],
      env: { ...process.env, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
    });
    this.pid = this.child.pid ?? -1;
    onLines(this.child.stdout!, (line) => {
      let message: Record<string, unknown>;
      try {
        message = JSON.parse(line);
      } catch {
        message = { text: line };
      }
      if (typeof message.error === "string") this.lastError = message.error;
      onLine(message);
    });
    this.child.stderr!.setEncoding("utf8");
    this.child.stderr!.on("data", (chunk: string) => {
      this.stderr = (this.stderr + chunk).slice(-4000);
    });
    this.child.on("exit", () => (this.reaped = true));
    this.exited = new Promise((resolve) => {
      this.child.on("close", (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      });
    });
  }

  /**
   * Sends a signal. Through `process.kill`, not `child.kill`: the latter may ignore a second
   * signal (a SIGKILL after a SIGSTOP).
   */
  kill(signal: "SIGKILL" | "SIGSTOP" = "SIGKILL"): void {
    if (this.reaped || this.pid <= 0) return;
    try {
      process.kill(this.pid, signal);
    } catch {
      // Already gone.
    }
  }

  /** What the process said about its end, for a failure report. */
  describeEnd(): string {
    const how = this.exit?.signal ?? `exit code ${this.exit?.code}`;
    const said = this.lastError ?? this.stderr.trim().split("\n").slice(-5).join(" | ");
    return `${this.id} (${this.runtime}, pid ${this.pid}) ended with ${how}${
      said ? `: ${said}` : ""
    }`;
  }
}

type Phase = "start-up" | "open" | "writing";

/** A writer process and what the harness knows of it. */
class Writer {
  phase: Phase = "start-up";
  killed = false;
  frozen = false;
  openingAt: number | undefined;
  readyAt: number | undefined;
  /** How long its `Memalloc.open` took, as it measured it. */
  openMs: number | undefined;
  /** Whether it kills itself inside `Memalloc.open` (`--die-in-open`). */
  dieInOpen = false;
  readonly proc: Proc;
  readonly stage: Stage;
  constructor(proc: Proc, stage: Stage) {
    this.proc = proc;
    this.stage = stage;
  }
}

type Stage = "creation" | "main" | "final";

/** Kills by the phase the victim was in. */
interface KillCounts {
  total: number;
  writing: number;
  writingHeld: number;
  open: number;
  openHeld: number;
  startup: number;
  /** Of those, kills timed by the writer itself inside `Memalloc.open` (creation rounds). */
  timed: number;
}

const noKills = (): KillCounts => ({
  total: 0,
  writing: 0,
  writingHeld: 0,
  open: 0,
  openHeld: 0,
  startup: 0,
  timed: 0,
});

/** What a creation round left in /dev/shm when both of its writers were dead. */
type SegmentState =
  | "absent"
  | "empty"
  | "sized, no header"
  | "header partly written"
  | "header, no store"
  | "formatted";

const SEGMENT_STATES: SegmentState[] = [
  "absent",
  "empty",
  "sized, no header",
  "header partly written",
  "header, no store",
  "formatted",
];

function shmPath(store: string): string {
  return `/dev/shm/memalloc.${store}`;
}

/** Reads the first bytes of a store's segment file to see how far its creation got. */
function segmentState(store: string): SegmentState {
  let size: number;
  try {
    size = statSync(shmPath(store)).size;
  } catch {
    return "absent";
  }
  if (size === 0) return "empty";
  const head = new Uint8Array(128);
  const fd = openSync(shmPath(store), "r");
  try {
    readSync(fd, head, 0, head.length, 0);
  } finally {
    closeSync(fd);
  }
  const words = new Uint32Array(head.buffer);
  if (words[SEG_MAGIC >>> 2] !== MAGIC) {
    return words.subarray(0, 16).some((word) => word !== 0)
      ? "header partly written"
      : "sized, no header";
  }
  return words[ST_MAGIC >>> 2] === STORE_MAGIC ? "formatted" : "header, no store";
}

/** Reads a /proc file (their size shows as 0, so read to the end). */
function readProcFile(path: string): string {
  const fd = openSync(path, "r");
  try {
    const chunks: string[] = [];
    const buffer = new Uint8Array(65536);
    const decoder = new TextDecoder();
    for (;;) {
      const n = readSync(fd, buffer, 0, buffer.length, null);
      if (n <= 0) break;
      chunks.push(decoder.decode(buffer.subarray(0, n), { stream: true }));
    }
    return chunks.join("");
  } finally {
    closeSync(fd);
  }
}

/**
 * Finds who holds a store's lock: the pid its holder records in the segment header
 * (`SEG_LOCK_HOLDER`) as soon as it has the lock, read from the shared-memory file. (`flock`
 * holders also show in /proc/locks; the robust mutex shows nowhere else.)
 */
class LockWatch {
  #fd: number | undefined;
  #available = true;
  readonly #word = new Uint32Array(1);

  readonly store: string;
  constructor(store: string) {
    this.store = store;
  }

  /** Whether the store's header could be read. */
  get available(): boolean {
    return this.#available;
  }

  /** The pid holding the lock, or `undefined` (nobody, or unknown). */
  holder(): number | undefined {
    if (!this.#available) return undefined;
    try {
      this.#fd ??= openSync(shmPath(this.store), "r");
      const bytes = new Uint8Array(this.#word.buffer);
      if (readSync(this.#fd, bytes, 0, 4, SEG_LOCK_HOLDER) !== 4) return undefined;
    } catch {
      return undefined; // not created yet, or removed: nobody holds it
    }
    return this.#word[0] === 0 ? undefined : this.#word[0];
  }

  /** Closes the file. */
  close(): void {
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
  }
}

/** The process state letter from /proc/<pid>/stat (R, S, D, T...), for hang reports. */
function processState(pid: number): string {
  try {
    const stat = readProcFile(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0] ?? "?";
  } catch {
    return "gone";
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const fmt = (n: number) => n.toLocaleString("en-US");
const ms = (n: number) => `${n < 10 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : n.toFixed(0)} ms`;

function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

// ---------------------------------------------------------------------------------------------
// The harness

/** Time without progress that counts as a hang, in ms. */
const HANG_MS = 10_000;
/** A single read longer than this is a hang, in ms. */
const SLOW_READ_MS = 2_000;
/** The main phase lasts at least this long, so that the readers have time to read, in ms. */
const READERS_AT_LEAST_MS = 2_000;
/** How often the monitor posts the store's figures, in ms. */
const STATS_EVERY_MS = 200;
/** Progress lines, in ms. */
const PROGRESS_EVERY_MS = 10_000;
/** Share of the killer's kills aimed at the writer holding the lock. */
const HOLDER_SHARE = 0.6;
/** How many times (1 ms apart) the killer looks for a lock holder before it picks at random. */
const HOLDER_LOOKS = 10;

class Harness {
  readonly options: Options;
  readonly base = `stress-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  readonly random = mulberry32(crypto.getRandomValues(new Uint32Array(1))[0]!);
  readonly startedAt = performance.now();
  /** Log lines go to stdout, or to stderr with --json. */
  readonly log: (line: string) => void;

  failures: string[] = [];
  hangs = 0;
  stopping = false;
  nextRuntime: Runtime = "deno";
  writerSerial = 0;

  readonly writers = new Set<Writer>();
  readonly readers: Proc[] = [];
  readonly readerReports = new Map<Proc, ReaderReport>();
  readonly readerLastHeard = new Map<Proc, number>();
  readonly readerSlowReported = new Set<Proc>();

  readonly kills: Record<Stage, KillCounts> = {
    creation: noKills(),
    main: noKills(),
    final: noKills(),
  };
  readonly starts: Record<Runtime, number> = { deno: 0, bun: 0, node: 0 };
  readonly readies: Record<Runtime, number> = { deno: 0, bun: 0, node: 0 };
  readonly readyMs: Record<Runtime, number[]> = { deno: [], bun: [], node: [] };
  /** Running average of spawn-to-ready times, in ms. */
  readonly readyGuess: Record<Runtime, number> = { deno: 120, bun: 50, node: 100 };
  /**
   * Running average of how long creating a store takes in `Memalloc.open` (the quicker opener
   * of each creation round, as the writer measured it), in ms.
   */
  openGuess = 1.5;
  readonly segmentStates = new Map<SegmentState, number>();
  creationRounds = 0;
  creationRepairs = 0;
  readonly storesToUnlink = new Set<string>();

  monitor: Worker | undefined;
  readonly monitorWaiters: Array<(reply: MonitorReply) => void> = [];
  lastStats: MemallocStats | undefined;
  lastStatsAt = 0;
  watching = false;
  writeStallMs = 0;
  lastTick = performance.now();
  lastProgress = performance.now();
  mainStartedAt = 0;
  mainEndedAt = 0;
  finalCheck: CheckResult | undefined;
  locks: LockWatch;

  constructor(options: Options) {
    this.options = options;
    this.log = options.json
      ? (line) => process.stderr.write(line + "\n")
      : (line) => console.log(line);
    this.locks = new LockWatch(this.base);
  }

  fail(message: string, hang = false): void {
    if (hang) this.hangs++;
    this.failures.push(hang ? `hang: ${message}` : message);
    this.log(`stress: FAILURE: ${hang ? "hang: " : ""}${message}`);
    this.stopping = true;
  }

  /** A child that ended on its own: a failure, with the end of its stderr in the log. */
  failEnded(role: string, proc: Proc): void {
    this.fail(`${role} ${proc.describeEnd()}`);
    const stderr = proc.stderr.trim();
    if (stderr) this.log(`stress: stderr of ${proc.id}:\n  ${stderr.split("\n").join("\n  ")}`);
  }

  // -- Workers and processes ------------------------------------------------------------------

  startMonitor(): Promise<void> {
    const worker = new Worker(new URL("./_monitor.ts", import.meta.url).href, { type: "module" });
    this.monitor = worker;
    return new Promise((resolve, reject) => {
      worker.onerror = (event) => {
        event.preventDefault?.();
        const message = `monitor worker error: ${event.message}`;
        reject(new Error(message));
        this.fail(message);
      };
      worker.onmessage = (event: MessageEvent<MonitorReply>) => {
        const reply = event.data;
        if (reply.type === "listening") return resolve();
        if (reply.type === "stats") return this.onStats(reply.stats);
        if (reply.type === "error" && (reply.during === "stats" || reply.during === "watch")) {
          return this.fail(`the harness's own ${reply.during} call threw ${reply.message}`);
        }
        for (const wake of this.monitorWaiters.splice(0)) wake(reply);
      };
    });
  }

  /** Sends a request to the monitor and waits for its reply (not a stats line). */
  ask(request: MonitorRequest, timeoutMs: number): Promise<MonitorReply | "timeout"> {
    return new Promise((resolve) => {
      const waiter = (reply: MonitorReply) => {
        clearTimeout(timer);
        resolve(reply);
      };
      const timer = setTimeout(() => {
        this.monitorWaiters.splice(this.monitorWaiters.indexOf(waiter) >>> 0, 1);
        resolve("timeout");
      }, timeoutMs);
      this.monitorWaiters.push(waiter);
      this.monitor!.postMessage(request);
    });
  }

  /**
   * Starts a writer on `store`; Deno, Bun and Node in turn unless `runtime` is given. With
   * `dieInOpenMs`, the writer kills itself that long after it starts `Memalloc.open`.
   */
  spawnWriter(store: string, stage: Stage, runtime?: Runtime, dieInOpenMs?: number): Writer {
    const rt = runtime ?? this.nextRuntime;
    if (runtime === undefined) {
      this.nextRuntime = RUNTIMES[(RUNTIMES.indexOf(rt) + 1) % RUNTIMES.length]!;
    }
    this.starts[rt]++;
    const id = `w${this.writerSerial++}${rt[0]}`;
    const args = [store, id, String(this.options.maxMemory), String(this.options.names)];
    if (dieInOpenMs !== undefined) args.push("--die-in-open", dieInOpenMs.toFixed(4));
    // deno-lint-ignore prefer-const
    let writer: Writer;
    const proc = new Proc(id, rt, "_writer.ts", args, (message) => {
      const now = performance.now();
      if (message.opening === true && writer.phase === "start-up") {
        writer.phase = "open";
        writer.openingAt = now;
      } else if (message.ready === true) {
        writer.phase = "writing";
        writer.readyAt = now;
        this.readies[rt]++;
        this.readyMs[rt].push(now - proc.spawnedAt);
        this.readyGuess[rt] = 0.9 * this.readyGuess[rt] + 0.1 * (now - proc.spawnedAt);
        if (typeof message.openMs === "number") writer.openMs = message.openMs;
      }
    }, "ignore");
    writer = new Writer(proc, stage);
    writer.dieInOpen = dieInOpenMs !== undefined;
    this.writers.add(writer);
    proc.exited.then(() => {
      this.writers.delete(writer);
      if (proc.lastError !== undefined) {
        this.failEnded("writer", proc); // whether or not it was killed after
      } else if (!writer.killed && writer.dieInOpen && proc.exit?.signal === "SIGKILL") {
        this.count(writer, stage, false);
        this.kills[stage].timed++;
      } else if (!writer.killed && !this.stopping) {
        this.failEnded("writer", proc);
      }
    });
    return writer;
  }

  /** SIGKILLs a writer and counts the kill by the phase it was in. */
  kill(writer: Writer, stage: Stage, holder: number | undefined): void {
    if (writer.killed) return;
    this.count(writer, stage, holder === writer.proc.pid);
    writer.proc.kill("SIGKILL");
  }

  count(writer: Writer, stage: Stage, held: boolean): void {
    writer.killed = true;
    const counts = this.kills[stage];
    counts.total++;
    if (writer.phase === "writing") {
      counts.writing++;
      if (held) counts.writingHeld++;
    } else if (writer.phase === "open") {
      counts.open++;
      if (held) counts.openHeld++;
    } else {
      counts.startup++;
    }
  }

  spawnReader(index: number, store: string): Proc {
    const runtime: Runtime = RUNTIMES[index % RUNTIMES.length]!;
    const args = [
      store,
      `r${index}${runtime[0]}`,
      String(this.options.maxMemory),
      String(this.options.names),
      String(Math.max(3600, this.options.kills)),
    ];
    if (this.options.inject === "torn" && index === 0) args.push("--corrupt-one");
    // deno-lint-ignore prefer-const
    let proc: Proc;
    proc = new Proc(`r${index}${runtime[0]}`, runtime, "_reader.ts", args, (message) => {
      this.readerLastHeard.set(proc, performance.now());
      if (message.type === "progress" || message.type === "summary") {
        const report = message as unknown as ReaderReport;
        const previous = this.readerReports.get(proc);
        this.readerReports.set(proc, report);
        if (report.torn > 0 && (previous?.torn ?? 0) === 0) {
          this.fail(`reader ${proc.id} read a torn value: ${report.tornSamples[0]}`);
        }
        if (report.errors > 0 && (previous?.errors ?? 0) === 0) {
          this.fail(`reader ${proc.id}: read() threw: ${report.errorSamples[0]}`);
        }
        if (report.maxReadMs > SLOW_READ_MS && !this.readerSlowReported.has(proc)) {
          this.readerSlowReported.add(proc);
          this.fail(`reader ${proc.id}: a single read took ${ms(report.maxReadMs)}`, true);
        }
      }
    }, "pipe");
    this.readerLastHeard.set(proc, performance.now());
    this.readers.push(proc);
    proc.exited.then(() => {
      if (proc.exit?.code !== 0 && proc.exit?.signal !== "SIGKILL") {
        this.failEnded("reader", proc);
      } else if (
        !this.readerReports.get(proc) || this.readerReports.get(proc)!.type !== "summary"
      ) {
        if (proc.exit?.signal !== "SIGKILL") this.fail(`reader ${proc.id} ended without a summary`);
      }
    });
    return proc;
  }

  // -- Watching for hangs -----------------------------------------------------------------------

  onStats(stats: MemallocStats): void {
    const previous = this.lastStats;
    if (previous !== undefined) {
      if (stats.writes < previous.writes) {
        this.fail(`the shared write counter went back from ${previous.writes} to ${stats.writes}`);
      }
      if (stats.repairs < previous.repairs) {
        this.fail(`the repair counter went back from ${previous.repairs} to ${stats.repairs}`);
      }
      if (stats.writes !== previous.writes) this.writeStallMs = 0;
    }
    this.lastStats = stats;
    this.lastStatsAt = performance.now();
  }

  /** Runs every 250 ms while the main phase runs: hang checks and progress lines. */
  tick(): void {
    const now = performance.now();
    const dt = now - this.lastTick;
    this.lastTick = now;
    if (this.stopping) return;
    const live = [...this.writers].filter((w) => !w.killed);
    if (this.watching) {
      if (live.some((w) => w.phase === "writing")) this.writeStallMs += dt;
      if (this.writeStallMs > HANG_MS) {
        this.fail(
          `the shared write counter has not moved for ${
            (this.writeStallMs / 1000).toFixed(1)
          } s while writers were ready; ${this.lockReport()}`,
          true,
        );
        return;
      }
      if (now - this.lastStatsAt > HANG_MS) {
        this.fail(
          `the harness's stats() call has not returned for ${
            ((now - this.lastStatsAt) / 1000).toFixed(1)
          } s; ${this.lockReport()}`,
          true,
        );
        return;
      }
    }
    for (const reader of this.readers) {
      const heard = this.readerLastHeard.get(reader) ?? now;
      if (reader.exit === undefined && now - heard > HANG_MS) {
        this.fail(
          `reader ${reader.id} (${reader.runtime}, pid ${reader.pid}, state ${
            processState(reader.pid)
          }) has not reported for ${((now - heard) / 1000).toFixed(1)} s; ${this.lockReport()}`,
          true,
        );
        return;
      }
    }
    for (const writer of live) {
      if (writer.phase !== "writing" && now - writer.proc.spawnedAt > HANG_MS) {
        this.fail(
          `writer ${writer.proc.id} (${writer.proc.runtime}, pid ${writer.proc.pid}, state ${
            processState(writer.proc.pid)
          }) is not ready ${((now - writer.proc.spawnedAt) / 1000).toFixed(1)} s after it ` +
            `started (phase ${writer.phase}); ${this.lockReport()}`,
          true,
        );
        return;
      }
    }
    if (now - this.lastProgress >= PROGRESS_EVERY_MS) {
      this.lastProgress = now;
      this.log(this.progressLine());
    }
  }

  lockReport(): string {
    const pid = this.locks.holder();
    if (pid === undefined) return "nobody holds the store's lock";
    const writer = [...this.writers].find((w) => w.proc.pid === pid);
    const reader = this.readers.find((r) => r.pid === pid);
    const who = writer
      ? `writer ${writer.proc.id} (${writer.proc.runtime}, phase ${writer.phase}${
        writer.frozen ? ", stopped on purpose by --inject hang" : ""
      })`
      : reader
      ? `reader ${reader.id} (${reader.runtime})`
      : pid === process.pid
      ? "the harness"
      : "another process";
    return `the lock is held by pid ${pid}, ${who}, state ${processState(pid)}`;
  }

  progressLine(): string {
    const k = this.kills.creation.total + this.kills.main.total;
    const m = this.kills.main;
    const reads = this.totals();
    const elapsed = (performance.now() - this.startedAt) / 1000;
    const mainSeconds = (performance.now() - this.mainStartedAt) / 1000;
    return `stress: ${elapsed.toFixed(0)} s: ${fmt(k)} kills (main ${fmt(m.total)}: ${
      fmt(m.writing)
    } writing, ${fmt(m.open)} open, ${fmt(m.startup)} start-up), ${
      fmt(this.lastStats?.writes ?? 0)
    } writes, ${fmt(this.lastStats?.repairs ?? 0)} repairs, ${fmt(reads.reads)} reads, ${
      fmt(reads.torn)
    } torn, max read ${ms(reads.maxReadMs)}, ${
      mainSeconds > 0 ? (m.total / mainSeconds).toFixed(1) : "0"
    } kills/s`;
  }

  totals(): {
    reads: number;
    hits: number;
    misses: number;
    torn: number;
    errors: number;
    maxReadMs: number;
    slowReads: number;
  } {
    const t = { reads: 0, hits: 0, misses: 0, torn: 0, errors: 0, maxReadMs: 0, slowReads: 0 };
    for (const report of this.readerReports.values()) {
      t.reads += report.reads;
      t.hits += report.hits;
      t.misses += report.misses;
      t.torn += report.torn;
      t.errors += report.errors;
      t.slowReads += report.slowReads;
      t.maxReadMs = Math.max(t.maxReadMs, report.maxReadMs);
    }
    return t;
  }

  // -- Phase 1: creation rounds -----------------------------------------------------------------

  async creationRound(round: number): Promise<void> {
    const store = `${this.base}-c${round}`;
    this.storesToUnlink.add(store);
    // Two writers race to create the store: each pair of runtimes in turn, either way round.
    const order: Runtime[] = [
      RUNTIMES[round % RUNTIMES.length]!,
      RUNTIMES[(round + 1 + (Math.floor(round / RUNTIMES.length) % 2)) % RUNTIMES.length]!,
    ];
    this.locks.close();
    const locks = this.locks = new LockWatch(store);
    const kill = (writer: Writer) => this.kill(writer, "creation", locks.holder());
    const timers: ReturnType<typeof setTimeout>[] = [];
    const writers = order.map((runtime) => {
      if (this.random() < 0.25) {
        // Killed by the harness anywhere from its spawn to about when it is ready.
        const writer = this.spawnWriter(store, "creation", runtime);
        const delay = this.random() * this.readyGuess[runtime];
        timers.push(setTimeout(() => kill(writer), delay));
        return writer;
      }
      // Killed inside Memalloc.open, to the microsecond, by a timer in the writer itself.
      return this.spawnWriter(store, "creation", runtime, this.random() * 1.5 * this.openGuess);
    });
    for (const writer of writers) {
      // Whatever happens, nobody outlives the round for long (the hang check fires first).
      timers.push(setTimeout(() => kill(writer), HANG_MS + 2000));
    }
    await Promise.all(writers.map((w) => w.proc.exited));
    for (const timer of timers) clearTimeout(timer);
    const opens = writers.map((w) => w.openMs).filter((t) => t !== undefined);
    if (opens.length > 0) this.openGuess = 0.8 * this.openGuess + 0.2 * Math.min(...opens);
    if (this.stopping) return;
    const state = segmentState(store);
    this.segmentStates.set(state, (this.segmentStates.get(state) ?? 0) + 1);
    const reply = await this.ask(
      { type: "check", store, maxMemory: this.options.maxMemory, names: this.options.names },
      60_000,
    );
    if (reply === "timeout") {
      this.fail(
        `creation round ${round}: opening and checking the store did not end in 60 s`,
        true,
      );
    } else if (reply.type === "error") {
      this.fail(`creation round ${round} (left ${state}): ${reply.during}: ${reply.message}`);
    } else if (reply.type === "checked") {
      const { problems, bad, before, after } = reply.result;
      this.creationRepairs += after.repairs;
      if (problems.length > 0) {
        this.fail(`creation round ${round} (left ${state}): verify(): ${problems.join("; ")}`);
      }
      if (bad.length > 0) this.fail(`creation round ${round}: bad value: ${bad[0]}`);
      if (after.writes !== before.writes + 1) {
        this.fail(
          `creation round ${round}: one write moved the write counter from ${before.writes} to ${after.writes}`,
        );
      }
    }
    Memalloc.unlink(store);
    this.storesToUnlink.delete(store);
    this.creationRounds++;
  }

  // -- Phase 2: the main run ------------------------------------------------------------------

  async killer(store: string): Promise<void> {
    const { kills, intervalMs } = this.options;
    let frozeOne = false;
    while (this.kills.main.total < kills && !this.stopping) {
      await sleep(this.random() * 2 * intervalMs);
      if (this.stopping) break;
      const candidates = () => [...this.writers].filter((w) => !w.killed && !w.frozen);
      let holder = this.locks.holder();
      let victim: Writer | undefined;
      if (this.random() < HOLDER_SHARE) {
        // Aim at the writer holding the lock; if none does right now, look again a few times.
        for (let look = 0; look < HOLDER_LOOKS && !this.stopping; look++) {
          victim = candidates().find((w) => w.proc.pid === holder);
          if (victim !== undefined) break;
          await sleep(1);
          holder = this.locks.holder();
        }
      }
      if (this.stopping) break;
      const live = candidates();
      if (live.length === 0) continue;
      if (this.options.inject === "hang" && !frozeOne && this.kills.main.total >= kills * 0.4) {
        const holding = live.find((w) => w.proc.pid === holder);
        if (holding !== undefined) {
          // --inject hang: stop the lock holder instead of killing it, and leave it be.
          frozeOne = true;
          holding.frozen = true;
          holding.proc.kill("SIGSTOP");
          this.log(`stress: --inject hang: stopped ${holding.proc.id} while it held the lock`);
          // No more kills: only the hang checks can end this run now.
          while (!this.stopping) await sleep(50);
          break;
        }
      }
      victim ??= live[Math.floor(this.random() * live.length)]!;
      this.kill(victim, "main", holder);
      this.spawnWriter(store, "main");
    }
  }

  async main(): Promise<void> {
    const { options } = this;
    this.log(
      `stress: ${options.soak ? "soak" : "run"} ${this.base}: ${fmt(options.kills)} kills, ${
        fmt(options.createRounds)
      } creation rounds, ${options.writers} writers, ${options.readers} readers, store ${
        fmt(options.maxMemory)
      } bytes, ${options.names} names, kills every ${options.intervalMs} ms on average`,
    );
    await this.startMonitor();
    const ticker = setInterval(() => this.tick(), 250);
    try {
      // Phase 1.
      for (let round = 0; round < options.createRounds && !this.stopping; round++) {
        await this.creationRound(round);
        if (performance.now() - this.lastProgress >= PROGRESS_EVERY_MS) {
          this.lastProgress = performance.now();
          this.log(
            `stress: creation rounds: ${fmt(this.creationRounds)} of ${
              fmt(options.createRounds)
            } done, ${fmt(this.kills.creation.total)} kills`,
          );
        }
      }

      if (this.stopping) return;
      // Phase 2: the store does not exist yet; the first writers race to create it.
      const store = this.base;
      this.locks.close();
      this.locks = new LockWatch(store);
      this.storesToUnlink.add(store);
      this.mainStartedAt = performance.now();
      this.lastProgress = this.mainStartedAt;
      for (let slot = 0; slot < options.writers; slot++) this.spawnWriter(store, "main");
      const killing = this.killer(store);
      // Readers and the monitor start once a writer is ready: the store exists by then.
      while (!this.stopping && ![...this.writers].some((w) => w.phase === "writing")) {
        await sleep(5);
      }
      if (!this.stopping) {
        for (let i = 0; i < options.readers; i++) this.spawnReader(i, store);
        this.monitor!.postMessage(
          {
            type: "watch",
            store,
            maxMemory: options.maxMemory,
            everyMs: STATS_EVERY_MS,
          } satisfies MonitorRequest,
        );
        this.lastStatsAt = performance.now();
        this.writeStallMs = 0;
        this.watching = true;
      }
      await killing;
      this.mainEndedAt = performance.now();
      // However few the kills, the readers get a couple of seconds of reading.
      const readFor = READERS_AT_LEAST_MS - (performance.now() - this.mainStartedAt);
      if (!this.stopping && readFor > 0) await sleep(readFor);

      // Phase 3: one more crash, then stop the readers.
      const holder = this.locks.holder();
      const remaining = [...this.writers].filter((w) => !w.killed);
      for (const writer of remaining) this.kill(writer, "final", holder);
      const writersGone = await Promise.race([
        Promise.all(remaining.map((w) => w.proc.exited)).then(() => true),
        sleep(HANG_MS).then(() => false),
      ]);
      if (!writersGone) this.fail("killed writers did not exit within 10 s", true);
      // Let the readers meet what the last crash left (the first of them to lock repairs it).
      await sleep(300);
      this.stopping = true;
      this.watching = false;
      for (const reader of this.readers) reader.child.stdin?.end();
      const readersDone = await Promise.race([
        Promise.all(this.readers.map((r) => r.exited)).then(() => true),
        sleep(HANG_MS).then(() => false),
      ]);
      if (!readersDone) {
        for (const reader of this.readers.filter((r) => r.exit === undefined)) {
          this.fail(
            `reader ${reader.id} (${reader.runtime}) did not stop within 10 s of being told to; ${this.lockReport()}`,
            true,
          );
          reader.kill();
        }
      }
      const unwatched = await this.ask({ type: "unwatch" }, HANG_MS);
      if (unwatched === "timeout") this.fail("the harness's stats() call did not return", true);

      // The final check: open, one write (repairs what the last crash left), verify, values.
      const reply = await this.ask(
        { type: "check", store, maxMemory: options.maxMemory, names: options.names },
        60_000,
      );
      if (reply === "timeout") {
        this.fail("the final check (open, write, verify) did not end in 60 s", true);
      } else if (reply.type === "error") {
        this.fail(`final check: ${reply.during}: ${reply.message}`);
      } else if (reply.type === "checked") {
        this.finalCheck = reply.result;
        const { problems, bad } = reply.result;
        if (problems.length > 0) this.fail(`verify() after the run: ${problems.join("; ")}`);
        if (bad.length > 0) {
          this.fail(`${bad.length} value(s) in the store fail their check: ${bad[0]}`);
        }
      }
    } finally {
      clearInterval(ticker);
      this.cleanUp();
    }
    this.checkCoverage();
  }

  /** A run that did not exercise what it claims to is a failure too. */
  checkCoverage(): void {
    if (this.failures.length > 0) return;
    const main = this.kills.main;
    const final = this.finalCheck;
    if (main.total < this.options.kills) {
      this.fail(`the killer made ${main.total} kills, ${this.options.kills} were asked`);
    }
    if (final !== undefined && final.after.writes <= 1) {
      this.fail("no writes were made: the writers never got to work");
    }
    // With enough kills, some must have hit writers at work, and some of those a mutation.
    if (main.writing === 0 && main.total >= 50) {
      this.fail(`${main.total} kills and none while a writer was writing`);
    }
    if (final !== undefined && final.after.repairs === 0 && main.total >= 50) {
      this.fail(`${main.total} kills and not one crash repair: kills never hit a mutation`);
    }
    for (const reader of this.readers) {
      const report = this.readerReports.get(reader);
      if (report === undefined || report.hits === 0) {
        this.fail(`reader ${reader.id} checked no values`);
      }
    }
  }

  /** Kills what is still running and removes the stores. Safe to call twice. */
  cleanUp(): void {
    for (const writer of this.writers) writer.proc.kill();
    for (const reader of this.readers) reader.kill();
    this.monitor?.terminate();
    this.monitor = undefined;
    for (const store of this.storesToUnlink) {
      try {
        Memalloc.unlink(store);
      } catch (error) {
        this.log(`stress: could not remove store ${store}: ${error}`);
      }
    }
    this.storesToUnlink.clear();
  }

  // -- The report -----------------------------------------------------------------------------

  summary(): Record<string, unknown> {
    const elapsedMs = performance.now() - this.startedAt;
    const mainMs = this.mainStartedAt === 0
      ? 0
      : (this.mainEndedAt || performance.now()) - this.mainStartedAt;
    const final = this.finalCheck?.after;
    return {
      ok: this.failures.length === 0,
      store: this.base,
      options: this.options,
      elapsedMs: Math.round(elapsedMs),
      kills: {
        total: this.kills.creation.total + this.kills.main.total + this.kills.final.total,
        ...this.kills,
      },
      mainPhaseMs: Math.round(mainMs),
      killsPerSecond: mainMs > 0 ? this.kills.main.total / (mainMs / 1000) : 0,
      creation: {
        rounds: this.creationRounds,
        segmentStates: Object.fromEntries(this.segmentStates),
        repairs: this.creationRepairs,
      },
      writerStarts: this.starts,
      writersReady: this.readies,
      startToReadyMs: Object.fromEntries(
        RUNTIMES.map((rt) => [
          rt,
          { median: median(this.readyMs[rt]), p95: percentile(this.readyMs[rt], 0.95) },
        ]),
      ),
      stats: final,
      finalCheck: this.finalCheck
        ? {
          repairedByFinalWrite: this.finalCheck.after.repairs - this.finalCheck.before.repairs,
          present: this.finalCheck.present,
          bad: this.finalCheck.bad,
          verify: this.finalCheck.problems,
        }
        : undefined,
      readers: [...this.readerReports.values()],
      reads: this.totals(),
      hangs: this.hangs,
      failures: this.failures,
      lockHolderKnown: this.locks.available,
    };
  }

  report(): void {
    const s = this.summary();
    const total = s.kills as { total: number };
    const reads = this.totals();
    const final = this.finalCheck;
    const verify = final === undefined
      ? "no final verify"
      : final.problems.length === 0 && final.bad.length === 0
      ? "verify clean"
      : `verify: ${final.problems.length} problem(s), ${final.bad.length} bad value(s)`;
    const first = this.failures[0] ?? "";
    const verdict = this.failures.length === 0
      ? `stress: ${fmt(total.total)} kills survived, ${
        fmt(reads.torn)
      } torn, ${this.hangs} hangs, ${verify} — ok`
      : `stress: FAILED — ${fmt(total.total)} kills, ${
        fmt(reads.torn)
      } torn, ${this.hangs} hangs, ${verify}; ${this.failures.length} failure(s), first: ${
        first.length > 160 ? first.slice(0, 157) + "..." : first
      }`;
    if (this.options.json) {
      console.log(JSON.stringify({ ...s, verdict }));
      console.log(verdict);
      return;
    }
    const { creation, main, final: last } = this.kills;
    const mainSeconds = (Number(s.mainPhaseMs) || 0) / 1000;
    const stats = final?.after;
    const states = SEGMENT_STATES.filter((state) => this.segmentStates.has(state))
      .map((state) => `${this.segmentStates.get(state)} ${state}`).join(", ");
    const phases = (k: KillCounts) =>
      `${fmt(k.writing)} while writing (${fmt(k.writingHeld)} holding the lock), ${
        fmt(k.open)
      } during open (${fmt(k.openHeld)} holding the lock), ${fmt(k.startup)} during start-up`;
    const lines = [
      "",
      `memalloc stress: store ${this.base}, ${
        fmt(this.options.maxMemory)
      } bytes, ${this.options.names} names, ${this.options.writers} writers, ${this.options.readers} readers`,
      `kills            ${fmt(total.total)}: ${fmt(main.total)} by the killer + ${
        fmt(creation.total)
      } in creation rounds + ${fmt(last.total)} at the end`,
      `  main phase     ${phases(main)}`,
      `  creation       ${fmt(this.creationRounds)} rounds: ${phases(creation)}; ${
        fmt(creation.timed)
      } of them timed by the writer inside Memalloc.open`,
      `                 the rounds left: ${states || "-"}`,
      `  at the end     ${phases(last)}`,
      this.mainStartedAt === 0
        ? "kill rate        - (the main phase did not run)"
        : `kill rate        ${(Number(s.killsPerSecond)).toFixed(1)} kills/s (main phase: ${
          fmt(main.total)
        } kills in ${mainSeconds.toFixed(1)} s)${
          this.locks.available ? "" : " (the store header unreadable: lock holder unknown)"
        }`,
      `writer starts    ${
        RUNTIMES.map((rt) => `${rt} ${fmt(this.starts[rt])} (${fmt(this.readies[rt])} got ready)`)
          .join(", ")
      }`,
      `start to ready   ${
        RUNTIMES.map((rt) =>
          `${rt} median ${ms(median(this.readyMs[rt]))}, p95 ${
            ms(percentile(this.readyMs[rt], 0.95))
          }`
        ).join("; ")
      }`,
      `writes           ${stats ? fmt(stats.writes) : "?"} (stats().writes, all processes)`,
      `deletes          ${stats ? fmt(stats.deletes) : "?"}`,
      `evictions        ${stats ? fmt(stats.evictions) : "?"}`,
      `repairs          ${stats ? fmt(stats.repairs) : "?"} (stats().repairs: crash repairs)${
        final ? `, ${final.after.repairs - final.before.repairs} by the final write` : ""
      }`,
      `reads checked    ${fmt(reads.reads)} reads, ${fmt(reads.hits)} values checked, ${
        fmt(reads.misses)
      } misses, ${fmt(reads.torn)} torn, ${fmt(reads.errors)} errors`,
      ...[...this.readerReports.values()].map((r) =>
        `  ${r.reader.padEnd(13)}  ${fmt(r.reads)} reads, ${
          fmt(r.hits)
        } checked, ${r.torn} torn, ${r.errors} errors, max read ${
          ms(r.maxReadMs)
        }, ${r.slowReads} over 100 ms${r.type === "summary" ? "" : " (no summary: last progress)"}`
      ),
      `max read         ${ms(reads.maxReadMs)} (hang above ${ms(SLOW_READ_MS)})`,
      `hangs            ${this.hangs}`,
      `final check      ${
        final
          ? `verify(): ${
            final.problems.length === 0 ? "clean" : final.problems.join("; ")
          }; ${final.present} of ${this.options.names} names present, ${final.bad.length} bad; ${
            fmt(final.after.entries)
          } entries`
          : "not done"
      }`,
      `elapsed          ${(Number(s.elapsedMs) / 1000).toFixed(1)} s`,
    ];
    if (this.failures.length > 0) {
      lines.push("failures:");
      for (const failure of this.failures) lines.push(`  - ${failure}`);
    }
    for (const line of lines) console.log(line);
    console.log(verdict);
  }
}

async function run(): Promise<number> {
  let options: Options | "help";
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`stress: ${error.message}\n\n${USAGE}`);
    return 2;
  }
  if (options === "help") {
    console.log(USAGE);
    return 0;
  }
  const harness = new Harness(options);
  const interrupt = (signal: string) => {
    harness.cleanUp();
    console.error(`stress: interrupted by ${signal}; processes killed, stores removed`);
    process.exit(130);
  };
  process.on("SIGINT", () => interrupt("SIGINT"));
  process.on("SIGTERM", () => interrupt("SIGTERM"));
  try {
    await harness.main();
  } catch (error) {
    harness.cleanUp();
    harness.fail(`the harness itself failed: ${error instanceof Error ? error.stack : error}`);
  }
  harness.report();
  return harness.failures.length === 0 ? 0 : 1;
}

process.exit(await run());
