/**
 * `npm run build`: the npm package's contents in `dist/`, for Bun and Node.
 *
 * - `dist/mod.js`: `mod.ts` and everything it imports, bundled by esbuild into one ES module
 *   (ES2022, so that even a Node.js too old for `node:ffi` loads it and gets memalloc's error),
 *   with `dist/mod.js.map`. cbor-x stays an import: it is a dependency, never a bundled copy.
 * - `dist/redis.js`: `redis/mod.ts` (`memalloc/redis`), built with mod.js so that the modules
 *   both use are one chunk in `dist/chunks/`. `redis` (node-redis), an optional peer
 *   dependency, stays an import: only this entry point loads it.
 * - `dist/cli.js`: the `memalloc` command (`cli/main.ts`, package.json's `bin`), with a shebang
 *   that runs it under Node with `node:ffi`. It imports the library from `./mod.js` rather than
 *   bundling a second copy, so `MemallocError` is one class and the package ships one library
 *   (only the segment layout's constants, `allocator/layout.ts`, are bundled into it).
 * - `dist/**.d.ts`: TypeScript's declarations of the same sources (`tsconfig.build.json`), their
 *   JSDoc kept, each relative `.ts` specifier rewritten to `.js` (tsc keeps them as written in
 *   declarations, where a consumer's `nodenext` resolution would not find them).
 *
 * Usage: deno run -A scripts/build.ts
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const root = fileURLToPath(new URL("..", import.meta.url));
const dist = `${root}dist/`;

rmSync(dist, { recursive: true, force: true });
// The library and its Redis entry point in one build, so that what they share (MemallocError,
// the codec) is one module in a chunk of its own, not a copy in each: `instanceof` holds across.
const result = await esbuild.build({
  absWorkingDir: root,
  entryPoints: { mod: "mod.ts", redis: "redis/mod.ts" },
  outdir: "dist",
  splitting: true,
  chunkNames: "chunks/[name]-[hash]",
  bundle: true,
  format: "esm",
  platform: "neutral",
  target: "es2022",
  external: ["cbor-x", "cbor-x/*", "redis", "node:*"],
  sourcemap: true,
  sourcesContent: true,
  legalComments: "inline",
  metafile: true,
  logLevel: "warning",
});
// The command: its own files bundled, the library (the root modules that mod.ts re-exports)
// imported from dist/mod.js, node: built-ins left to the runtime.
const LIBRARY = new Set(
  ["memalloc.ts", "options.ts", "default_store.ts", "errors.ts", "mod.ts"].map((file) =>
    `${root}${file}`
  ),
);
const cli = await esbuild.build({
  absWorkingDir: root,
  entryPoints: ["cli/main.ts"],
  outfile: "dist/cli.js",
  bundle: true,
  format: "esm",
  platform: "neutral",
  target: "es2022",
  external: ["cbor-x", "cbor-x/*", "node:*"],
  banner: { js: "#!/usr/bin/env -S node --experimental-ffi --disable-warning=ExperimentalWarning" },
  plugins: [{
    name: "library-from-mod-js",
    setup(build) {
      build.onResolve({ filter: /^\.\.\/[a-z_]+\.ts$/ }, (args) => {
        const path = fileURLToPath(new URL(args.path, `file://${args.resolveDir}/`));
        return LIBRARY.has(path) ? { path: "./mod.js", external: true } : undefined;
      });
    },
  }],
  sourcemap: true,
  sourcesContent: true,
  legalComments: "inline",
  metafile: true,
  logLevel: "warning",
});
await esbuild.stop();
chmodSync(`${dist}cli.js`, 0o755);
const bundled = [result, cli].flatMap((built) => Object.keys(built.metafile.inputs))
  .filter((p) => p.includes("node_modules"));
if (bundled.length > 0) throw new Error(`A dependency was bundled: ${bundled.join(", ")}`);
// Its own files, and the segment layout's constants (verify reads a header word): nothing else.
const library = Object.keys(cli.metafile.inputs)
  .filter((p) => !p.startsWith("cli/") && p !== "allocator/layout.ts");
if (library.length > 0) throw new Error(`dist/cli.js bundled the library: ${library.join(", ")}`);

const tsc = existsSync(`${root}node_modules/.bin/tsc`) ? `${root}node_modules/.bin/tsc` : "tsc";
const declarations = spawnSync(tsc, ["-p", "tsconfig.build.json"], {
  cwd: root,
  stdio: "inherit",
});
if (declarations.status !== 0) {
  console.error(`tsc failed (${declarations.status ?? declarations.signal})`);
  Deno.exit(1);
}

// Relative imports in code, not in the JSDoc examples (lines of a comment start with "*").
const SPECIFIER = /^(?!\s*\*)(.*?(?:from\s+|import\())(["'])(\.{1,2}\/[^"']+)\.ts\2/gm;
for (const file of files(dist).filter((f) => f.endsWith(".d.ts"))) {
  const text = readFileSync(dist + file, "utf8");
  writeFileSync(dist + file, text.replace(SPECIFIER, "$1$2$3.js$2"));
}

/** Every file under `dir`, relative to it. */
function files(dir: string, prefix = ""): string[] {
  return readdirSync(dir).sort().flatMap((name) =>
    statSync(dir + name).isDirectory()
      ? files(`${dir}${name}/`, `${prefix}${name}/`)
      : [`${prefix}${name}`]
  );
}
const written = files(dist);
const bytes = written.reduce((sum, file) => sum + statSync(dist + file).size, 0);
console.log(`dist/: ${written.length} files, ${(bytes / 1024).toFixed(1)} KiB`);
for (const file of written) console.log(`  ${file}  ${statSync(dist + file).size} B`);
