/**
 * Argument checks of {@linkcode RedisStore}, with the same errors and messages as `Memalloc`'s,
 * so that a call that one store refuses the other refuses the same way, before anything is
 * sent to the server.
 *
 * @module
 */
import { encodeName } from "../allocator/store.ts";
import { describe } from "../ffi/segment.ts";
import { checkTtl } from "../options.ts";
import type { RedisStoreOptions } from "./store.ts";

// The option checks Memalloc uses, so that both stores refuse the same options the same way.
export { describe } from "../ffi/segment.ts";
export {
  checkFinite,
  checkListText as checkListOptions,
  checkOptionKeys,
  checkTtl,
  checkVersion,
} from "../options.ts";

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

const OPTION_KEYS = new Set(["maxMemory", "autoclean", "ttl", "connectTimeout"]);

/** Throws the `TypeError`/`RangeError` for bad {@linkcode RedisStore.connect} options. */
export function checkStoreOptions(options: unknown): RedisStoreOptions {
  if (options === undefined) return {};
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    throw new TypeError(`Store options must be an object, got ${describe(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (!OPTION_KEYS.has(key)) {
      throw new TypeError(
        `Unknown store option "${key}": the options are maxMemory, autoclean, ttl and connectTimeout`,
      );
    }
  }
  const { maxMemory, autoclean, ttl, connectTimeout } = options as RedisStoreOptions;
  if (maxMemory !== undefined) {
    if (typeof maxMemory !== "number" || !Number.isInteger(maxMemory)) {
      throw new TypeError(
        `maxMemory must be an integer number of bytes, got ${describe(maxMemory)}`,
      );
    }
    if (maxMemory < 1 || maxMemory > Number.MAX_SAFE_INTEGER) {
      throw new RangeError(`maxMemory must be from 1 byte up, got ${maxMemory}`);
    }
  }
  if (autoclean !== undefined) {
    if (typeof autoclean !== "number" || Number.isNaN(autoclean)) {
      throw new TypeError(`autoclean must be a number in (0, 1], got ${describe(autoclean)}`);
    }
    if (!(autoclean > 0 && autoclean <= 1)) {
      throw new RangeError(`autoclean must be in (0, 1], got ${autoclean}`);
    }
  }
  if (ttl !== undefined) checkTtl(ttl, "connect");
  if (connectTimeout !== undefined) {
    if (typeof connectTimeout !== "number") {
      throw new TypeError(`connectTimeout must be a number of ms, got ${describe(connectTimeout)}`);
    }
    if (!(connectTimeout > 0) || !Number.isFinite(connectTimeout)) {
      throw new RangeError(`connectTimeout must be a positive number of ms, got ${connectTimeout}`);
    }
  }
  return options as RedisStoreOptions;
}
