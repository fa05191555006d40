/**
 * The stores on this machine: every memalloc shared-memory object in `/dev/shm`, with its
 * figures, for `memalloc stores` and the dashboard's store list.
 *
 * @module
 */
import { readdirSync } from "node:fs";
import { Memalloc, type MemallocStats } from "../memalloc.ts";
import { MemallocError } from "../errors.ts";

/** Where the C library keeps POSIX shared-memory objects on Linux. */
export const SHM_DIRECTORY = "/dev/shm";
/** The file name prefix of a memalloc store's object (`memalloc.<name>`). */
export const STORE_FILE_PREFIX = "memalloc.";

/** One store as {@linkcode listStores} finds it. */
export interface StoreListing {
  /** The store name. */
  name: string;
  /** Its figures, when it could be opened. */
  stats?: MemallocStats;
  /** Why it could not be opened (another layout, not trusted, permission denied ...). */
  error?: { code: string; message: string };
}

/**
 * Every store in `/dev/shm`, sorted by name, each opened without creating anything
 * (`create: false`), read, and closed again. A store that cannot be opened is listed with the
 * reason. Nothing in any store changes.
 *
 * @returns The stores.
 * @throws {MemallocError} `ENOENT` when there is no `/dev/shm` to look in.
 *
 * @example List the stores
 * ```ts
 * import { Memalloc } from "../memalloc.ts";
 * import { listStores } from "./stores.ts";
 *
 * const name = `doc-${crypto.randomUUID()}`;
 * Memalloc.open(name, { maxMemory: 1 << 20 }).close();
 * const found = listStores().find((store) => store.name === name);
 * console.log(found?.stats?.capacity); // 1048576
 * Memalloc.unlink(name);
 * ```
 */
export function listStores(): StoreListing[] {
  let files: string[];
  try {
    files = readdirSync(SHM_DIRECTORY);
  } catch (cause) {
    throw new MemallocError(
      `Cannot list the stores: ${SHM_DIRECTORY} cannot be read (${(cause as Error).message})`,
      { code: (cause as { code?: string }).code ?? "ENOENT", cause },
    );
  }
  const listings: StoreListing[] = [];
  for (const file of files.sort()) {
    if (!file.startsWith(STORE_FILE_PREFIX) || file.length === STORE_FILE_PREFIX.length) continue;
    const name = file.slice(STORE_FILE_PREFIX.length);
    try {
      using store = Memalloc.open(name, { create: false });
      listings.push({ name, stats: store.stats() });
    } catch (error) {
      // Removed since the directory was read: it is not a store any more.
      if (error instanceof MemallocError && error.code === "ERR_MEMALLOC_NOT_FOUND") continue;
      const code = (error as { code?: unknown }).code;
      listings.push({
        name,
        error: {
          code: typeof code === "string" ? code : (error as Error).name,
          message: (error as Error).message,
        },
      });
    }
  }
  return listings;
}
