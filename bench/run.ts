/**
 * `deno task bench`: runs every benchmark script under bench/ on Deno, on Bun and on Node, one
 * after the other, so the figures of the three runtimes come from one run on one machine.
 *
 * Usage: deno run -A bench/run.ts [name-filter...] [-- args for the scripts]
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { NODE_FLAGS } from "../tests/_spawn.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const bin = (name: string) =>
  existsSync(`${root}node_modules/.bin/${name}`) ? `${root}node_modules/.bin/${name}` : name;
const split = Deno.args.indexOf("--");
const filters = split < 0 ? Deno.args : Deno.args.slice(0, split);
const passThrough = split < 0 ? [] : Deno.args.slice(split + 1);

const scripts = readdirSync(`${root}bench`)
  .filter((f) => f.endsWith("_bench.ts"))
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort();
let failures = 0;
for (const script of scripts) {
  for (const runtime of ["deno", "bun", "node"]) {
    const argv = runtime === "deno"
      ? ["run", "-A", "--unstable-kv", `bench/${script}`, ...passThrough]
      : runtime === "node"
      ? [...NODE_FLAGS, `bench/${script}`, ...passThrough]
      : [`bench/${script}`, ...passThrough];
    console.log(`\n### ${script} on ${runtime}`);
    const result = spawnSync(bin(runtime), argv, { cwd: root, stdio: "inherit" });
    if (result.status !== 0) failures++;
  }
}
Deno.exit(failures === 0 ? 0 : 1);
