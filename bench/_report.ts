/**
 * Shared output for the benchmark scripts: a table on stdout and a JSON file under
 * `bench/results/`. Benchmarks report; they never assert timings.
 *
 * @module
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { runtime } from "../ffi/runtime.ts";

/** Version string of the running runtime. */
export function runtimeVersion(): string {
  const g = globalThis as {
    Deno?: { version: { deno: string } };
    Bun?: { version: string };
    process?: { versions: { node: string } };
  };
  return runtime === "deno"
    ? `deno ${g.Deno!.version.deno}`
    : runtime === "bun"
    ? `bun ${g.Bun!.version}`
    : `node ${g.process!.versions.node}`;
}

/** Times `body(iterations)` after a warm-up; returns nanoseconds per iteration (best of `rounds`). */
export function measure(
  body: (iterations: number) => void,
  iterations: number,
  rounds = 5,
): number {
  body(Math.min(iterations, 100_000)); // warm-up: let the JIT compile the loop
  let best = Infinity;
  for (let round = 0; round < rounds; round++) {
    const start = performance.now();
    body(iterations);
    best = Math.min(best, ((performance.now() - start) * 1e6) / iterations);
  }
  return best;
}

/** Prints rows as an aligned table. */
export function printTable(rows: Array<Record<string, string | number>>): void {
  if (rows.length === 0) return;
  const keys = Object.keys(rows[0]!);
  const cell = (v: string | number | undefined) =>
    typeof v === "number"
      ? (Number.isInteger(v) ? v.toLocaleString("en-US") : v.toFixed(1))
      : v ?? "";
  const widths = keys.map((k) => Math.max(k.length, ...rows.map((r) => cell(r[k]).length)));
  const line = (values: string[]) => values.map((v, i) => v.padEnd(widths[i]!)).join("  ");
  console.log(line(keys));
  console.log(line(widths.map((w) => "-".repeat(w))));
  for (const row of rows) console.log(line(keys.map((k) => cell(row[k]))));
}

/** Writes `bench/results/<name>-<runtime>.json` and returns its path. */
export function writeResults(name: string, data: unknown): string {
  const dir = fileURLToPath(new URL("./results/", import.meta.url));
  mkdirSync(dir, { recursive: true });
  const path = `${dir}${name}-${runtime}.json`;
  writeFileSync(
    path,
    JSON.stringify(
      { runtime: runtimeVersion(), date: new Date().toISOString(), ...data as object },
      null,
      2,
    ),
  );
  return path;
}
