/**
 * Argument checks of {@linkcode RedisStore}, with the same errors and messages as `Memalloc`'s,
 * so that a call that one store refuses the other refuses the same way, before anything is
 * sent to the server.
 *
 * @module
 */
import { encodeName } from "../allocator/store.ts";

/** A short description of a value for an error message. */
export function describe(value: unknown): string {
  if (typeof value === "string") {
    return `"${value.length > 40 ? value.slice(0, 40) + "..." : value}"`;
  }
  if (typeof value === "number" && !Number.isInteger(value) && Number.isFinite(value)) {
    return String(value);
  }
  if (value === null) return "null";
  if (typeof value === "bigint") return `${value}n`;
  if (typeof value === "object") return value.constructor?.name ?? "object";
  if (typeof value === "function") return "a function";
  if (typeof value === "symbol") return "a symbol";
  return String(value);
}

const nameScratch = new Uint8Array(1024);

/** Throws the `TypeError`/`RangeError` that `Memalloc` throws for a bad entry name. */
export function checkEntryName(name: unknown): asserts name is string {
  encodeName(name, nameScratch);
}

/** The longest store name, in UTF-8 bytes. */
const MAX_STORE_NAME_BYTES = 200;

/**
 * Throws unless `name` can name a store on Redis: a non-empty, well-formed string of at most
 * 200 UTF-8 bytes without `{` or `}` (the name is the keys' hash tag).
 */
export function checkStoreName(name: unknown): asserts name is string {
  if (typeof name !== "string") {
    throw new TypeError(`Store name must be a string, got ${describe(name)}`);
  }
  if (name.length === 0) throw new TypeError("Store name must not be empty");
  if (/[{}]/.test(name)) {
    throw new TypeError(`Store name "${name}" must not contain "{" or "}" (it is the hash tag)`);
  }
  if (!name.isWellFormed()) throw new TypeError(`Store name "${name}" contains a lone surrogate`);
  const bytes = new TextEncoder().encode(name).length;
  if (bytes > MAX_STORE_NAME_BYTES) {
    throw new RangeError(
      `Store name "${
        name.slice(0, 40)
      }..." is ${bytes} bytes long, the limit is ${MAX_STORE_NAME_BYTES}`,
    );
  }
}

/** Throws unless `ttl` is a time to live in ms: a finite number from 0 up; returns it. */
export function checkTtl(ttl: unknown, verb: string): number {
  if (typeof ttl !== "number") {
    throw new TypeError(`The ttl of ${verb}() must be a number of ms, got ${describe(ttl)}`);
  }
  if (!Number.isFinite(ttl) || ttl < 0) {
    throw new RangeError(
      `The ttl of ${verb}() must be a finite number of ms from 0 up (0: no expiry), got ${ttl}`,
    );
  }
  return ttl;
}

/** Throws a `TypeError` unless `options` is an object with only `keys`. */
export function checkOptionKeys(options: unknown, verb: string, keys: Set<string>): void {
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    throw new TypeError(`The options of ${verb}() must be an object, got ${describe(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (!keys.has(key)) {
      throw new TypeError(
        `Unknown option "${key}" for ${verb}(): the options are ${[...keys].join(", ")}`,
      );
    }
  }
}

/** An `ifVersion` option, checked: a version, `null` (when allowed), or absent. */
export function checkVersion(version: unknown, allowNull: boolean): number | null | undefined {
  if (version === undefined || (version === null && allowNull)) return version;
  if (typeof version !== "number") {
    throw new TypeError(
      `ifVersion must be a version number${allowNull ? " or null" : ""}, got ${describe(version)}`,
    );
  }
  if (!Number.isSafeInteger(version) || version < 0) {
    throw new RangeError(`ifVersion must be a whole number from 0 to 2^53 - 1, got ${version}`);
  }
  return version;
}

/** Throws unless `value` is a finite number; returns it. */
export function checkFinite(value: unknown, what: string, name: string): number {
  if (typeof value !== "number") {
    throw new TypeError(
      `Cannot increment "${name}": ${what} must be a number, got ${describe(value)}`,
    );
  }
  if (!Number.isFinite(value)) {
    throw new RangeError(`Cannot increment "${name}": ${what} must be finite, got ${value}`);
  }
  return value;
}

/** The prefix and limit of keys()/entries()/list() options, checked. */
export function checkListOptions(
  options: unknown,
  verb: string,
): { prefix: string; limit: number } {
  if (options === undefined) return { prefix: "", limit: Infinity };
  checkOptionKeys(options, verb, new Set(["prefix", "limit"]));
  const { prefix = "", limit = Infinity } = options as { prefix?: unknown; limit?: unknown };
  if (typeof prefix !== "string") {
    throw new TypeError(`The prefix of ${verb}() must be a string, got ${describe(prefix)}`);
  }
  if (!prefix.isWellFormed()) {
    throw new TypeError(`The prefix of ${verb}() contains a lone surrogate`);
  }
  if (typeof limit !== "number") {
    throw new TypeError(`The limit of ${verb}() must be a number, got ${describe(limit)}`);
  }
  if (!(limit >= 0) || (limit !== Infinity && !Number.isInteger(limit))) {
    throw new RangeError(`The limit of ${verb}() must be a whole number from 0 up, got ${limit}`);
  }
  return { prefix, limit };
}
