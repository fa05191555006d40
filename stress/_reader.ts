/**
 * A reader process for the stress harness (`stress/stress.ts`).
 *
 * Usage: `_reader.ts <store> <reader-id> <max-memory> <names> <max-seconds> [--corrupt-one]`
 *
 * Reads random names of the shared pool as fast as it can and checks every value it gets
 * against the checksum it carries (see `_value.ts`). It counts reads, hits, misses, torn or
 * invalid values and thrown errors (with their messages), and times every single read. Every
 * second it prints a JSON progress line; when its standard input closes (the harness is done),
 * after `<max-seconds>`, or when its parent is gone, it prints a JSON summary line and exits.
 * If the harness died (killed with SIGKILL, so it could not clean up), it removes the store.
 *
 * `--corrupt-one` is for testing the harness itself: the first value of at least 16 characters
 * that this reader gets has one character changed before it is checked, so the harness must
 * report one torn value and fail (`stress.ts --inject torn`).
 *
 * @module
 */
import { writeSync } from "node:fs";
import process from "node:process";
import { Memalloc } from "../mod.ts";
import { runtime } from "../ffi/runtime.ts";
import { type CborValue, checkValue, describe, poolName } from "./_value.ts";
import { mulberry32 } from "../tests/_random.ts";

/** What a reader reports, in its progress lines and its summary. */
export interface ReaderReport {
  type: "progress" | "summary";
  reader: string;
  runtime: string;
  /** Reads done. */
  reads: number;
  /** Reads that returned a value; each was checked. */
  hits: number;
  /** Reads that found no entry. */
  misses: number;
  /** Values that failed their check. */
  torn: number;
  /** Reads that threw. */
  errors: number;
  /** Longest single `read()`, in ms. */
  maxReadMs: number;
  /** Reads that took over 100 ms. */
  slowReads: number;
  /** The first few torn values: what was wrong, and the value. */
  tornSamples: string[];
  /** The first few errors' messages. */
  errorSamples: string[];
  /** Why it stopped (summary only). */
  stoppedBy?: "stdin" | "deadline" | "parent";
}

const SAMPLES = 5;

function say(message: ReaderReport | Record<string, unknown>): void {
  writeSync(1, JSON.stringify(message) + "\n");
}

/** Changes one character of a value's payload (`--corrupt-one`); `undefined` if too short. */
function corrupt(value: unknown): unknown {
  const flip = (text: string) => text.slice(0, -1) + (text.endsWith("a") ? "b" : "a");
  if (typeof value === "string") return value.length >= 16 ? flip(value) : undefined;
  if (value instanceof Uint8Array) {
    if (value.length < 16) return undefined;
    const copy = value.slice();
    copy[copy.length - 1] = copy[copy.length - 1] === 0x61 ? 0x62 : 0x61;
    return copy;
  }
  const object = value as CborValue;
  if (typeof object?.payload === "string" && object.payload.length >= 16) {
    return { ...object, payload: flip(object.payload) };
  }
  return undefined;
}

async function main(): Promise<void> {
  const [storeName, reader, maxMemoryText, namesText, secondsText] = process.argv.slice(2);
  const maxMemory = Number(maxMemoryText);
  const names = Number(namesText);
  const seconds = Number(secondsText);
  let corruptOne = process.argv.includes("--corrupt-one");
  if (
    !storeName || !reader || !Number.isInteger(maxMemory) || !Number.isInteger(names) ||
    !(seconds > 0)
  ) {
    throw new Error("usage: _reader.ts <store> <reader-id> <max-memory> <names> <max-seconds>");
  }
  const pool = Array.from({ length: names }, (_, i) => poolName(i));
  const random = mulberry32(crypto.getRandomValues(new Uint32Array(1))[0]!);
  const parent = process.ppid;
  const deadline = performance.now() + seconds * 1000;

  let stoppedBy: ReaderReport["stoppedBy"];
  process.stdin.on("end", () => (stoppedBy ??= "stdin"));
  process.stdin.on("close", () => (stoppedBy ??= "stdin"));
  process.stdin.resume();

  const report: ReaderReport = {
    type: "progress",
    reader,
    runtime,
    reads: 0,
    hits: 0,
    misses: 0,
    torn: 0,
    errors: 0,
    maxReadMs: 0,
    slowReads: 0,
    tornSamples: [],
    errorSamples: [],
  };
  const store = Memalloc.open(storeName, { maxMemory });
  say({ ready: true, pid: process.pid });
  let lastReport = performance.now();

  while (stoppedBy === undefined) {
    // Read for ~20 ms, then let the event loop run (stdin events, timers).
    const batchEnd = performance.now() + 20;
    let now = 0;
    do {
      const name = pool[Math.floor(random() * names)]!;
      const start = performance.now();
      let value: unknown;
      try {
        value = store.read(name);
      } catch (error) {
        report.errors++;
        if (report.errorSamples.length < SAMPLES) {
          report.errorSamples.push(
            `read(${name}): ${error instanceof Error ? `${error.name}: ${error.message}` : error}`,
          );
        }
        now = performance.now();
        continue;
      }
      now = performance.now();
      const took = now - start;
      if (took > report.maxReadMs) report.maxReadMs = took;
      if (took > 100) report.slowReads++;
      report.reads++;
      if (value === undefined) {
        report.misses++;
        continue;
      }
      report.hits++;
      if (corruptOne) {
        const corrupted = corrupt(value);
        if (corrupted !== undefined) {
          value = corrupted;
          corruptOne = false;
        }
      }
      const problem = checkValue(name, value);
      if (problem !== undefined) {
        report.torn++;
        if (report.tornSamples.length < SAMPLES) {
          report.tornSamples.push(`${problem}: ${describe(value)}`);
        }
      }
    } while (now < batchEnd);

    if (now - lastReport >= 1000) {
      say(report);
      lastReport = now;
    }
    if (now > deadline) stoppedBy = "deadline";
    else if (process.ppid !== parent) stoppedBy = "parent";
    else await new Promise((resolve) => setTimeout(resolve, 0));
  }
  store.close();
  if (process.ppid !== parent) {
    // The harness died without cleaning up: remove its store, nobody else will.
    stoppedBy = "parent";
    Memalloc.unlink(storeName);
  }
  say({ ...report, type: "summary", stoppedBy });
  process.exit(0);
}

main().catch((error) => {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  say({ error: text, stack: error instanceof Error ? error.stack : undefined });
  process.exit(1);
});
