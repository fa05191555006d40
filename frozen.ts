/**
 * Frozen reads: deep freezing of decoded values, and the per-process cache of them that
 * `Memalloc.read(name, { frozen: true })` keeps, keyed by each entry's version.
 *
 * A version is taken from one store-wide counter that only grows (even across a repair), so a
 * name and a version always mean the same bytes: a cached value whose version is the entry's
 * current one is the value a fresh decode would give. The check is made inside the lock-free
 * read, under the same seqlock test as a plain read, so it is never stale and never torn.
 *
 * @module
 */

/** What one handle's cache of frozen values may hold. */
export interface DecodeCacheLimits {
  /** Values at most (default 10,000); 0 turns the cache off (every frozen read decodes). */
  entries?: number;
  /**
   * Stored bytes at most, summed over the cached values' encoded sizes in the segment
   * (default 32 MiB). A decoded object takes a few times its encoded size in the JS heap.
   */
  bytes?: number;
}

/** The default number of values a handle caches for frozen reads. */
export const DEFAULT_DECODE_CACHE_ENTRIES = 10_000;
/** The default bytes (encoded sizes) a handle caches for frozen reads. */
export const DEFAULT_DECODE_CACHE_BYTES = 32 * 1024 * 1024;

/** One cached value. */
export interface Cached {
  version: number;
  value: unknown;
  size: number;
  /** Read since the clock hand last passed it. */
  used: boolean;
}

/**
 * A bounded map from names to decoded, frozen values with their versions. Eviction is CLOCK
 * (second chance) over the map's insertion order: a hit sets one flag, where moving the entry
 * to the end, as strict LRU does, would cost a delete and an insert.
 */
export class DecodeCache {
  readonly maxEntries: number;
  readonly maxBytes: number;
  #map = new Map<string, Cached>();
  #bytes = 0;

  constructor(limits: Required<DecodeCacheLimits>) {
    this.maxEntries = limits.entries;
    this.maxBytes = limits.bytes;
  }

  /** Values held. */
  get size(): number {
    return this.#map.size;
  }

  /** Encoded bytes held. */
  get bytes(): number {
    return this.#bytes;
  }

  /** What is cached for `name`: its version and value; mark it read with {@linkcode hit}. */
  get(name: string): Cached | undefined {
    return this.#map.get(name);
  }

  /** The version cached for `name`, or -1 (no version is negative). */
  version(name: string): number {
    return this.#map.get(name)?.version ?? -1;
  }

  /** `cached`'s value, marked read (so that the clock hand passes it once more). */
  hit(cached: Cached): unknown {
    cached.used = true;
    return cached.value;
  }

  /** Keeps `value` as `name`'s at `version`, evicting others to stay within the limits. */
  set(name: string, version: number, value: unknown, size: number): void {
    if (size > this.maxBytes || this.maxEntries === 0) return this.delete(name);
    const map = this.#map;
    const old = map.get(name);
    if (old !== undefined) {
      this.#bytes -= old.size;
      map.delete(name);
    }
    while (map.size >= this.maxEntries || this.#bytes + size > this.maxBytes) this.#evictOne();
    map.set(name, { version, value, size, used: false });
    this.#bytes += size;
  }

  /** Forgets `name`. */
  delete(name: string): void {
    const old = this.#map.get(name);
    if (old === undefined) return;
    this.#bytes -= old.size;
    this.#map.delete(name);
  }

  /** Forgets everything. */
  clear(): void {
    this.#map.clear();
    this.#bytes = 0;
  }

  /** Evicts the oldest value not read since the hand last passed; gives the others a chance. */
  #evictOne(): void {
    const map = this.#map;
    for (const [name, cached] of map) {
      map.delete(name);
      if (cached.used && map.size > 0) {
        cached.used = false;
        map.set(name, cached); // second chance: to the back of the queue
        continue;
      }
      this.#bytes -= cached.size;
      return;
    }
  }
}

function refuse(): never {
  throw new TypeError(
    "Cannot change a value read with { frozen: true }: it is shared by every frozen read of " +
      "this entry; read it without frozen for a copy of your own",
  );
}

const MAP_MUTATORS = ["set", "delete", "clear"] as const;
const SET_MUTATORS = ["add", "delete", "clear"] as const;
const DATE_MUTATORS = Object.getOwnPropertyNames(Date.prototype).filter((key) =>
  key.startsWith("set")
);

/** Shadows `methods` of `target` with own, read-only functions that throw. */
function shadow(target: object, methods: readonly string[]): void {
  for (const method of methods) {
    Object.defineProperty(target, method, { value: refuse, writable: false, configurable: false });
  }
}

/**
 * Freezes a decoded value and everything it holds: plain objects and arrays with
 * `Object.freeze`; `Map`s, `Set`s and `Date`s also get own `set`/`add`/`delete`/`clear`/
 * `setTime`... that throw a `TypeError` (their contents live in internal slots that
 * `Object.freeze` does not reach; `Map.prototype.set.call(map, ...)` still gets past this).
 *
 * @returns `false` when the value holds binary data (a typed array), which no freeze can make
 * read-only: such a value must not be shared, and is frozen everywhere else.
 */
export function deepFreeze(value: unknown): boolean {
  if (typeof value !== "object" || value === null) return true;
  let shareable = true;
  const stack: object[] = [value];
  while (stack.length > 0) {
    const object = stack.pop()!;
    if (ArrayBuffer.isView(object)) {
      shareable = false;
      continue;
    }
    if (Object.isFrozen(object)) continue; // seen (cycles, shared parts) or nothing to freeze
    if (object instanceof Map) {
      shadow(object, MAP_MUTATORS);
      for (const [key, item] of object) {
        if (typeof key === "object" && key !== null) stack.push(key);
        if (typeof item === "object" && item !== null) stack.push(item);
      }
    } else if (object instanceof Set) {
      shadow(object, SET_MUTATORS);
      for (const item of object) if (typeof item === "object" && item !== null) stack.push(item);
    } else if (object instanceof Date) {
      shadow(object, DATE_MUTATORS);
    }
    Object.freeze(object);
    if (Array.isArray(object)) {
      for (const item of object) if (typeof item === "object" && item !== null) stack.push(item);
    } else {
      for (const key in object) {
        const item = (object as Record<string, unknown>)[key];
        if (typeof item === "object" && item !== null) stack.push(item);
      }
    }
  }
  return shareable;
}
