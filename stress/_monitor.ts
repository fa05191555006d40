/**
 * A Worker of the stress harness (`stress/stress.ts`) that does the harness's own store calls,
 * so that a call that blocks (a lock held forever) or never returns cannot freeze the harness:
 * the main thread only watches the messages, and calls it a hang when they stop.
 *
 * Messages in ({@linkcode MonitorRequest}):
 * - `watch`: open the store and post its `stats()` every `everyMs` ms until `unwatch`;
 * - `unwatch`: stop and close it;
 * - `check`: open the store afresh, as a new process would, do one write (the first locker
 *   repairs what a killed writer left), then `verify()` it and check every value of the pool.
 *
 * @module
 */
import { Memalloc, type MemallocStats } from "../mod.ts";
import { checkValue, describe, makeValue, poolName } from "./_value.ts";

/** What the harness asks of the monitor. */
export type MonitorRequest =
  | { type: "watch"; store: string; maxMemory: number; everyMs: number }
  | { type: "unwatch" }
  | { type: "check"; store: string; maxMemory: number; names: number };

/** The final check of one store. */
export interface CheckResult {
  /** Figures before the check's write. */
  before: MemallocStats;
  /** Figures after the check's write, verify and reads. */
  after: MemallocStats;
  /** What `verify()` found after the write. */
  problems: string[];
  /** Pool names that have a value. */
  present: number;
  /** Values of the pool that failed their check, described. */
  bad: string[];
}

/** What the monitor posts. */
export type MonitorReply =
  | { type: "listening" }
  | { type: "stats"; stats: MemallocStats; at: number }
  | { type: "unwatched" }
  | { type: "checked"; store: string; result: CheckResult }
  | { type: "error"; during: string; message: string };

const scope = self as unknown as {
  onmessage: ((event: MessageEvent<MonitorRequest>) => void) | null;
  postMessage(message: MonitorReply): void;
};

let watched: Memalloc | undefined;
let timer: ReturnType<typeof setInterval> | undefined;

function errorText(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

function check(name: string, maxMemory: number, names: number): CheckResult {
  using store = Memalloc.open(name, { maxMemory });
  const before = store.stats();
  const first = poolName(0);
  store.write(first, makeValue("string", first, "check", 0, 100, 0));
  const problems = store.verify();
  let present = 0;
  const bad: string[] = [];
  for (let i = 0; i < names; i++) {
    const entry = poolName(i);
    const value = store.read(entry);
    if (value === undefined) continue;
    present++;
    const problem = checkValue(entry, value);
    if (problem !== undefined) bad.push(`${problem}: ${describe(value)}`);
  }
  const after = store.stats();
  if (after.entries !== present) {
    problems.push(`store counts ${after.entries} entries, the pool has ${present} values`);
  }
  return { before, after, problems, present, bad };
}

scope.onmessage = (event) => {
  const request = event.data;
  try {
    if (request.type === "watch") {
      watched = Memalloc.open(request.store, { maxMemory: request.maxMemory });
      const store = watched;
      const post = () => scope.postMessage({ type: "stats", stats: store.stats(), at: Date.now() });
      post();
      timer = setInterval(() => {
        try {
          post();
        } catch (error) {
          scope.postMessage({ type: "error", during: "stats", message: errorText(error) });
        }
      }, request.everyMs);
    } else if (request.type === "unwatch") {
      clearInterval(timer);
      watched?.close();
      watched = undefined;
      scope.postMessage({ type: "unwatched" });
    } else {
      const result = check(request.store, request.maxMemory, request.names);
      scope.postMessage({ type: "checked", store: request.store, result });
    }
  } catch (error) {
    scope.postMessage({ type: "error", during: request.type, message: errorText(error) });
  }
};
// Say we are listening: a message posted before the handler is set may be lost (Bun).
scope.postMessage({ type: "listening" });
