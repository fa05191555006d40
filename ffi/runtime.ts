/**
 * Runtime detection, in one place. memalloc runs on Deno, Bun and Node.js (26.1 and later,
 * through `node:ffi`); everything that differs between them is chosen here.
 *
 * @module
 */

/** Which JavaScript runtime this module is running on. */
export type RuntimeName = "deno" | "bun" | "node" | "other";

/** The runtime this module is running on, detected once at load. */
export const runtime: RuntimeName = "Bun" in globalThis
  ? "bun"
  : "Deno" in globalThis
  ? "deno"
  : typeof (globalThis as { process?: { versions?: { node?: unknown } } }).process?.versions
      ?.node === "string"
  ? "node"
  : "other";

/**
 * The operating system, as Node names it (`"linux"`, `"darwin"`, `"win32"`...): Deno's
 * `Deno.build.os` ("windows" there) or `process.platform`.
 */
export const platform: string = runtime === "deno"
  ? (Deno.build.os === "windows" ? "win32" : Deno.build.os)
  : (globalThis as { process?: { platform?: string } }).process?.platform ?? "unknown";

/** Whether Deno grants a permission now, asked without prompting; always `true` elsewhere. */
function granted(descriptor: Deno.PermissionDescriptor): boolean {
  if (runtime !== "deno") return true;
  try {
    return Deno.permissions.querySync(descriptor).state === "granted";
  } catch {
    return false;
  }
}

/**
 * An environment variable, read only where the runtime already allows it: under Deno without
 * `--allow-env` for that name it is `undefined`, with no prompt and no error. An empty value
 * counts as unset.
 *
 * @param name The variable's name.
 * @returns Its value, or `undefined`.
 */
export function readEnv(name: string): string | undefined {
  let value: string | undefined;
  if (runtime === "deno") {
    if (!granted({ name: "env", variable: name })) return undefined;
    value = Deno.env.get(name);
  } else {
    value = (globalThis as { process?: { env: Record<string, string | undefined> } }).process
      ?.env[name];
  }
  return value === "" ? undefined : value;
}

/**
 * Whether loading a native Node-API addon from npm (cbor-x's optional string extractor) is
 * allowed without a prompt. Its loader reads environment variables and files (`/proc/self/exe`,
 * `ldd`) and asks for the CPU list, so under Deno it needs all of `--allow-env`, `--allow-read`
 * and `--allow-sys` (or `-A`); Bun has no permissions, and Node.js's permission model (`--permission`)
 * already denies FFI itself unless `--allow-ffi` is given.
 */
export const nativeAddonsAllowed: boolean = runtime !== "deno" ||
  (granted({ name: "env" }) && granted({ name: "read" }) && granted({ name: "sys" }));
