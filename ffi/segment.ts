/**
 * A named POSIX shared-memory segment: `shm_open`, `ftruncate`, `posix_fallocate` and `mmap`,
 * through the runtime's FFI. One `ArrayBuffer` over the whole mapping, and a lock (`lock.ts`)
 * that the kernel hands on when its holder dies.
 *
 * @module
 */
import {
  LAYOUT_VERSION,
  LITTLE_ENDIAN,
  LOCK_KIND_FLOCK,
  LOCK_KIND_MUTEX,
  MAGIC,
  MAX_SEGMENT_SIZE,
  MIN_SEGMENT_SIZE,
  OLDEST_LAYOUT_VERSION,
  SEG_CREATED,
  SEG_CREATOR_PID,
  SEG_LOCK_GENERATION,
  SEG_LOCK_HOLDER,
  SEG_LOCK_KIND,
  SEG_MAGIC,
  SEG_SIZE,
  SEG_VERSION,
  SEGMENT_HEADER_BYTES,
} from "../allocator/layout.ts";
import { MemallocError } from "../errors.ts";
import {
  DEFAULT_LOCK_TIMEOUT,
  flockWithin,
  initMutex,
  LOCK_KINDS,
  type LockKind,
  SegmentLock,
} from "./lock.ts";
import { readEnv } from "./runtime.ts";
import {
  cString,
  EEXIST,
  EINTR,
  ENOENT,
  ERRNO_CODES,
  LOCK_EX,
  LOCK_UN,
  type Mapping,
  NO_ID,
  O_CREAT,
  O_EXCL,
  O_RDONLY,
  O_RDWR,
  SEEK_END,
  STATX_BASIC_STATS,
  STATX_SIZE,
  STX_GID,
  STX_MODE,
  STX_UID,
} from "./libc.ts";
import { libc } from "./sys.ts";

/** Prefix of every memalloc shared-memory object (`/dev/shm/memalloc.<name>` on Linux). */
export const SHM_PREFIX = "/memalloc.";
/** Longest file name the platform allows for a shared-memory object (Linux `NAME_MAX`). */
const NAME_MAX = 255;
/** Longest store name in UTF-8 bytes: `NAME_MAX` less the prefix. */
export const MAX_NAME_BYTES: number = NAME_MAX - (SHM_PREFIX.length - 1);
/** Environment variable that picks the lock kind of new stores: `mutex` or `flock`. */
export const LOCK_ENV = "MEMALLOC_LOCK";
/** Longest lock timeout accepted, in ms: a day. */
const MAX_LOCK_TIMEOUT = 86_400_000;
/** Default permission bits of a new segment. */
export const DEFAULT_MODE = 0o600;

/**
 * Whom a store may be shared with besides the calling user: who else may own it, and which group
 * may write to it. See {@linkcode Segment.open} for how an existing store is checked.
 */
export interface MemallocTrust {
  /** User ids, besides the calling user's, that may own an existing store. */
  owners?: readonly number[];
  /**
   * A group id. A store this call creates is given to that group (`fchown`; the caller must be
   * a member); an existing store may be writable by its group when its group is this one.
   */
  group?: number;
}

/** Options for {@linkcode Segment.open}. */
export interface SegmentOptions {
  /** Size in bytes of a segment created by this call; an existing one keeps its size. */
  size: number;
  /**
   * Permission bits of a segment created by this call (default `0o600`). For an existing
   * segment, the most it may allow others: one writable by its group or by every user is opened
   * only when these bits allow that too.
   */
  mode?: number;
  /** Who else may own or write to the segment (default: nobody but the calling user). */
  trust?: MemallocTrust;
  /**
   * The lock kind of a segment this call creates: `"mutex"` (a robust process-shared mutex,
   * the default where the C library is glibc) or `"flock"`. An existing segment keeps its kind.
   */
  lock?: LockKind;
  /** How long a lock waits for its holder before it fails, in ms (default 5,000). */
  lockTimeout?: number;
  /**
   * Whether to create the segment when there is none (default `true`). With `false`, a missing
   * segment (or one whose creator died before it was whole) is `ERR_MEMALLOC_NOT_FOUND`, and
   * nothing is created or changed.
   */
  create?: boolean;
}

/** The error for a store that `create: false` did not find. */
function notFound(name: string, what = "there is no such store"): MemallocError {
  return new MemallocError(
    `Cannot open store "${name}": ${what} (${SHM_PREFIX}${name}); nothing was created`,
    { code: "ERR_MEMALLOC_NOT_FOUND", store: name },
  );
}

/** Throws a `TypeError`/`RangeError` for a name that cannot be a store name. */
export function checkName(name: unknown): asserts name is string {
  if (typeof name !== "string") {
    throw new TypeError(`Store name must be a string, got ${describe(name)}`);
  }
  if (name.length === 0) throw new TypeError("Store name must not be empty");
  if (name.includes("/")) throw new TypeError(`Store name "${name}" must not contain "/"`);
  if (name.includes("\0")) throw new TypeError(`Store name "${name}" must not contain NUL`);
  if (!name.isWellFormed()) {
    throw new TypeError(`Store name "${name}" contains a lone surrogate`);
  }
  const bytes = new TextEncoder().encode(name).length;
  if (bytes > MAX_NAME_BYTES) {
    throw new RangeError(
      `Store name "${name.slice(0, 40)}..." is ${bytes} bytes long, the limit is ${MAX_NAME_BYTES}`,
    );
  }
}

function checkSize(size: unknown): asserts size is number {
  if (typeof size !== "number" || !Number.isInteger(size)) {
    throw new TypeError(`Segment size must be an integer number of bytes, got ${describe(size)}`);
  }
  if (size < MIN_SEGMENT_SIZE || size > MAX_SEGMENT_SIZE) {
    throw new RangeError(
      `Segment size ${size} is out of range: it must be from ${MIN_SEGMENT_SIZE} to ${MAX_SEGMENT_SIZE} bytes`,
    );
  }
}

function checkMode(mode: unknown): asserts mode is number {
  if (typeof mode !== "number") {
    throw new TypeError(
      `Segment mode must be permission bits from 0o000 to 0o777, got ${describe(mode)}`,
    );
  }
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o777) {
    throw new RangeError(
      `Segment mode must be permission bits from 0o000 to 0o777, got ${
        typeof mode === "number" && Number.isInteger(mode) && mode >= 0
          ? `0o${mode.toString(8)}`
          : describe(mode)
      }`,
    );
  }
}

const MAX_ID = 0xffff_fffe; // (uid_t)-1 means "no id"

function checkId(id: unknown, what: string): asserts id is number {
  if (typeof id !== "number" || !Number.isInteger(id)) {
    throw new TypeError(`${what} must be an integer id, got ${describe(id)}`);
  }
  if (id < 0 || id > MAX_ID) throw new RangeError(`${what} ${id} is out of range: 0 to ${MAX_ID}`);
}

/** Throws a `TypeError`/`RangeError` for a `trust` option of the wrong form. */
export function checkTrust(trust: unknown): asserts trust is MemallocTrust | undefined {
  if (trust === undefined) return;
  if (typeof trust !== "object" || trust === null || Array.isArray(trust)) {
    throw new TypeError(`trust must be an object, got ${describe(trust)}`);
  }
  for (const key of Object.keys(trust)) {
    if (key !== "owners" && key !== "group") {
      throw new TypeError(`Unknown trust option "${key}": the options are owners and group`);
    }
  }
  const { owners, group } = trust as MemallocTrust;
  if (owners !== undefined) {
    if (!Array.isArray(owners)) {
      throw new TypeError(`trust.owners must be an array of user ids, got ${describe(owners)}`);
    }
    for (const uid of owners) checkId(uid, "trust.owners: a user id");
  }
  if (group !== undefined) checkId(group, "trust.group");
}

/** A short, safe description of a value for an error message. */
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

/** Builds the error for a failed system call, with the errno the call left. */
export function systemError(
  store: string,
  action: string,
  syscall: string,
  errno: number = libc().errno(),
): MemallocError {
  const code = ERRNO_CODES[errno] ?? `E${errno}`;
  const text = libc().strerror(errno);
  const reason = text.charAt(0).toLowerCase() + text.slice(1);
  return new MemallocError(`Cannot ${action} store "${store}": ${reason} (${code})`, {
    code,
    syscall,
    errno,
    store,
  });
}

function retryOnEintr(call: () => number): number {
  let result = call();
  while (result === -1 && libc().errno() === EINTR) result = call();
  return result;
}

/**
 * One open shared-memory segment. Its lock (a robust mutex in the segment, or `flock` on the
 * descriptor) excludes every other holder on the same name, in other threads or Workers of this
 * process or in any other process; the kernel hands it on when its holder dies.
 *
 * The segment starts with a 128-byte header (magic, layout version, size, creation time, lock
 * kind, holder, mutex) that the first opener writes once, under an `flock` of the descriptor.
 * The rest belongs to the caller.
 *
 * @example Open, write, reopen, read back
 * ```ts
 * import { Segment } from "./segment.ts";
 *
 * const name = `doc-${crypto.randomUUID()}`;
 * {
 *   using segment = Segment.open(name, { size: 1 << 20 });
 *   new Uint8Array(segment.buffer)[100] = 42;
 * }
 * using again = Segment.open(name, { size: 1 << 20 });
 * if (new Uint8Array(again.buffer)[100] !== 42) throw new Error("lost");
 * Segment.unlink(name);
 * ```
 */
export class Segment {
  /** The store name this segment belongs to. */
  readonly name: string;
  /** Size of the mapping in bytes: the segment's real size, whatever was asked. */
  readonly size: number;
  /** Whether this call created the shared-memory object. */
  readonly created: boolean;
  /** When the segment was first created (ms since the epoch), from its header. */
  readonly createdAt: number;
  #fd: number;
  #mapping: Mapping | null;
  #lock: SegmentLock;

  private constructor(
    name: string,
    fd: number,
    mapping: Mapping,
    created: boolean,
    kind: LockKind,
    timeoutMs: number,
  ) {
    this.name = name;
    this.#fd = fd;
    this.#mapping = mapping;
    this.size = mapping.length;
    this.created = created;
    this.createdAt = new DataView(mapping.buffer).getFloat64(SEG_CREATED, true);
    this.#lock = new SegmentLock(name, fd, mapping, kind, timeoutMs);
  }

  /**
   * Opens the segment of a store, creating it when it does not exist. Creation is race-free:
   * of several processes opening a new name at once, the first to take the exclusive lock
   * writes the header and the others wait for it. A segment that exists with another size is
   * opened at its real size ({@linkcode Segment.size}).
   *
   * @param name The store name: 1 to 246 UTF-8 bytes, no `/`.
   * @param options `size` in bytes for a new segment; `mode` (default `0o600`).
   * @returns The open segment; close it with {@linkcode Segment.close} or `using`.
   * @throws {TypeError} For a name or option of the wrong type or form.
   * @throws {RangeError} For a name too long or a size or mode out of range.
   * @throws {MemallocError} When a system call fails (`code` `"EACCES"`, `"ENOSPC"`, ...),
   * or the object is not a memalloc segment (`ERR_MEMALLOC_FORMAT`) or has a newer layout
   * (`ERR_MEMALLOC_VERSION`); such a segment is left untouched.
   */
  static open(name: string, options: SegmentOptions): Segment {
    checkName(name);
    if (typeof options !== "object" || options === null) {
      throw new TypeError(`Segment options must be an object, got ${describe(options)}`);
    }
    checkSize(options.size);
    const mode = options.mode === undefined ? DEFAULT_MODE : options.mode; // null is no mode
    checkMode(mode);
    checkTrust(options.trust);
    checkLockOptions(options.lock, options.lockTimeout);
    const create = options.create ?? true;
    if (typeof create !== "boolean") {
      throw new TypeError(`create must be a boolean, got ${describe(create)}`);
    }
    const timeoutMs = options.lockTimeout ?? DEFAULT_LOCK_TIMEOUT;
    if (!LITTLE_ENDIAN) throw new Error("memalloc needs a little-endian machine");

    const c = libc();
    const path = cString(SHM_PREFIX + name);
    let fd = -1;
    let created = false;
    // Create with O_EXCL to know whether we made it; otherwise open what is there. Loop for the
    // case where another process unlinks it between our two calls.
    if (!create) {
      fd = c.shm_open(path, O_RDWR, 0);
      if (fd < 0) {
        const errno = c.errno();
        throw errno === ENOENT ? notFound(name) : systemError(name, "open", "shm_open", errno);
      }
    }
    for (let attempt = 0; fd < 0; attempt++) {
      fd = c.shm_open(path, O_RDWR | O_CREAT | O_EXCL, mode);
      if (fd >= 0) {
        created = true;
        break;
      }
      let errno = c.errno();
      if (errno !== EEXIST) throw systemError(name, "create", "shm_open", errno);
      fd = c.shm_open(path, O_RDWR, 0);
      if (fd >= 0) break;
      errno = c.errno();
      if (errno !== ENOENT || attempt > 100) throw systemError(name, "open", "shm_open", errno);
    }

    try {
      if (created) {
        const group = options.trust?.group;
        if (group !== undefined && c.fchown(fd, NO_ID, group) !== 0) {
          throw systemError(name, "give the group to", "fchown");
        }
        // shm_open applies the umask; set the asked-for bits exactly.
        if (c.fchmod(fd, mode) !== 0) throw systemError(name, "create", "fchmod");
      } else {
        checkOwner(name, fd, mode, options.trust);
      }
      // Creation and the header check run under an flock of the descriptor, so that of several
      // processes opening a new name at once one writes the header and the others wait.
      const locked = flockWithin(fd, LOCK_EX, timeoutMs);
      if (locked > 0) throw systemError(name, "lock", "flock", locked);
      if (locked < 0) {
        throw new MemallocError(
          `Cannot open store "${name}": another process has been creating it for over ${timeoutMs} ms (stopped?); nothing was changed`,
          { code: "ERR_MEMALLOC_LOCK_TIMEOUT", store: name },
        );
      }
      try {
        const kind = options.lock ?? defaultLockKind();
        const { mapping, lockKind } = Segment.#mapAndInitialize(
          name,
          fd,
          options.size,
          created,
          kind,
          create,
        );
        try {
          return new Segment(name, fd, mapping, created, lockKind, timeoutMs);
        } catch (error) {
          c.munmap(mapping);
          throw error;
        }
      } finally {
        retryOnEintr(() => c.flock(fd, LOCK_UN));
      }
    } catch (error) {
      if (created) c.shm_unlink(path); // a failed open leaves nothing behind
      c.close(fd);
      throw error;
    }
  }

  /** Under the exclusive lock: size, reserve and map the segment; write or check its header. */
  static #mapAndInitialize(
    name: string,
    fd: number,
    size: number,
    created: boolean,
    kind: LockKind,
    create: boolean,
  ): { mapping: Mapping; lockKind: LockKind } {
    const c = libc();
    const actual = c.lseek(fd, 0, SEEK_END);
    if (actual < 0) throw systemError(name, "open", "lseek");
    const fresh = actual === 0;
    if (fresh && !create) throw notFound(name, "its creator died before sizing it");
    if (fresh) {
      // Nobody has sized it yet: we do, and reserve the pages so that a full /dev/shm is an
      // ENOSPC now rather than a SIGBUS on some later write.
      if (retryOnEintr(() => c.ftruncate(fd, size)) !== 0) {
        throw systemError(name, "create", "ftruncate");
      }
      const errno = c.posix_fallocate(fd, 0, size);
      if (errno !== 0) {
        if (!created) c.ftruncate(fd, 0); // leave it as we found it
        throw systemError(name, "reserve memory for", "posix_fallocate", errno);
      }
    } else if (actual < SEGMENT_HEADER_BYTES) {
      throw new MemallocError(
        `Cannot open store "${name}": the shared-memory object is ${actual} bytes, too small to be a memalloc segment`,
        { code: "ERR_MEMALLOC_FORMAT", store: name },
      );
    }
    const length = fresh ? size : actual;
    const mapping = c.mmapShared(fd, length);
    if (mapping === null) {
      const error = systemError(name, "map", "mmap");
      if (fresh && !created) c.ftruncate(fd, 0);
      throw error;
    }
    try {
      const view = new DataView(mapping.buffer);
      const magic = view.getUint32(SEG_MAGIC, true);
      if (magic === 0 && isUnfinished(mapping.buffer, length)) {
        // New, or its creator died before the header was whole (the magic goes last): write it.
        if (!create) throw notFound(name, "its creator died before writing its header");
        if (!fresh) {
          const errno = c.posix_fallocate(fd, 0, length);
          if (errno !== 0) throw systemError(name, "reserve memory for", "posix_fallocate", errno);
        }
        view.setUint32(SEG_VERSION, LAYOUT_VERSION, true);
        view.setFloat64(SEG_SIZE, length, true);
        view.setFloat64(SEG_CREATED, Date.now(), true);
        view.setUint32(SEG_CREATOR_PID, c.getpid(), true);
        view.setUint32(SEG_LOCK_HOLDER, 0, true);
        view.setUint32(SEG_LOCK_GENERATION, 0, true);
        if (kind === "mutex") initMutex(name, mapping);
        view.setUint32(SEG_LOCK_KIND, LOCK_KINDS[kind], true);
        view.setUint32(SEG_MAGIC, MAGIC, true);
        return { mapping, lockKind: kind };
      }
      return { mapping, lockKind: checkHeader(name, view, length) };
    } catch (error) {
      c.munmap(mapping);
      throw error;
    }
  }

  /** The whole mapping. Throws once the segment is closed. */
  get buffer(): ArrayBuffer {
    if (this.#mapping === null) throw closedError(this.name);
    return this.#mapping.buffer;
  }

  /** Whether {@linkcode Segment.close} has been called. */
  get closed(): boolean {
    return this.#mapping === null;
  }

  /**
   * Takes the segment's lock, waiting at most the lock timeout for its holder: exclusive for
   * writers; `exclusive: false` takes a shared `flock` where the kind is `flock` (the mutex is
   * always exclusive). Not re-entrant.
   *
   * @param exclusive `false` for a shared lock where the kind allows one.
   * @returns `true` when the previous holder died holding it: the caller repairs what it left.
   * @throws {MemallocError} `ERR_MEMALLOC_LOCK_TIMEOUT` when a live holder kept it past the
   * timeout (nothing is taken), `ERR_MEMALLOC_LOCK_HELD` when this thread holds it already,
   * `ERR_MEMALLOC_CLOSED` once the segment is closed.
   */
  lock(exclusive = true): boolean {
    if (this.#mapping === null) throw closedError(this.name);
    return this.#lock.lock(exclusive);
  }

  /**
   * Takes the lock if it is free, without waiting.
   *
   * @param exclusive As for {@linkcode Segment.lock}.
   * @returns Whether the lock was taken.
   * @throws {MemallocError} When the lock call fails, or the segment is closed.
   */
  tryLock(exclusive = true): boolean {
    if (this.#mapping === null) throw closedError(this.name);
    return this.#lock.tryLock(exclusive);
  }

  /**
   * Releases the lock taken by {@linkcode Segment.lock} or {@linkcode Segment.tryLock}.
   *
   * @throws {MemallocError} When the unlock call fails, or the segment is closed.
   */
  unlock(): void {
    if (this.#mapping === null) throw closedError(this.name);
    this.#lock.unlock();
  }

  /** The segment's layout version, from its header (see allocator/layout.ts). */
  get layoutVersion(): number {
    return new DataView(this.buffer, SEG_VERSION, 4).getUint32(0, true);
  }

  /** The lock kind the segment header records. */
  get lockKind(): LockKind {
    return this.#lock.kind;
  }

  /** The mapping's address, for FFI calls on memory inside it. Throws once closed. */
  get address(): bigint {
    if (this.#mapping === null) throw closedError(this.name);
    return this.#mapping.address;
  }

  /** The pid of the process that holds the lock, as it recorded; 0 when free. */
  get lockHolder(): number {
    return this.#mapping === null ? 0 : this.#lock.holder;
  }

  /**
   * Unmaps the segment and closes its descriptor, which releases any lock it holds. The data
   * stays in shared memory for the next opener. Safe to call twice.
   */
  close(): void {
    const mapping = this.#mapping;
    if (mapping === null) return;
    this.#mapping = null;
    const c = libc();
    c.munmap(mapping);
    c.close(this.#fd);
    this.#fd = -1;
  }

  /** Same as {@linkcode Segment.close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  /**
   * Removes a store's segment name. Processes that have it open keep their mapping; the memory
   * is freed when the last one closes it.
   *
   * @param name The store name.
   * @returns `true` if a segment was removed, `false` if there was none.
   * @throws {TypeError} For a bad name.
   * @throws {MemallocError} When `shm_unlink` fails for another reason (`EACCES`).
   */
  static unlink(name: string): boolean {
    checkName(name);
    const c = libc();
    if (c.shm_unlink(cString(SHM_PREFIX + name)) === 0) return true;
    const errno = c.errno();
    if (errno === ENOENT) return false;
    throw systemError(name, "unlink", "shm_unlink", errno);
  }

  /**
   * Whether a store's segment exists (whether or not this process may open it).
   *
   * @param name The store name.
   * @returns `true` when the shared-memory object exists.
   * @throws {TypeError} For a bad name.
   */
  static exists(name: string): boolean {
    checkName(name);
    const c = libc();
    const fd = c.shm_open(cString(SHM_PREFIX + name), O_RDONLY, 0);
    if (fd >= 0) {
      c.close(fd);
      return true;
    }
    return c.errno() !== ENOENT;
  }
}

/**
 * Refuses an existing segment that someone else could have filled: one owned by another user
 * (unless `trust.owners` names them), or writable by its group or by every user beyond what
 * `mode` allows (its group may write when it is `trust.group`). `/dev/shm` is writable by every
 * user, so anyone can create a store under any name before its application does, and read or
 * forge what it keeps there. Runs before the segment is locked, mapped or read.
 */
function checkOwner(
  name: string,
  fd: number,
  mode: number,
  trust: MemallocTrust | undefined,
): void {
  const c = libc();
  const stat = new Uint8Array(STATX_SIZE);
  if (c.fstatx(fd, STATX_BASIC_STATS, stat) !== 0) throw systemError(name, "open", "statx");
  const view = new DataView(stat.buffer);
  const uid = view.getUint32(STX_UID, true);
  const gid = view.getUint32(STX_GID, true);
  const bits = view.getUint16(STX_MODE, true) & 0o777;
  const octal = `0o${bits.toString(8).padStart(3, "0")}`;
  const self = c.geteuid();
  const refuse = (why: string, trusted: string) =>
    new MemallocError(
      `Cannot open store "${name}": ${why}, so what it holds cannot be trusted; open it with ${trusted} if that is meant, or else remove it (Memalloc.unlink, as its owner or root) or use another name`,
      { code: "ERR_MEMALLOC_UNTRUSTED", store: name },
    );
  if (uid !== self && !(trust?.owners ?? []).includes(uid)) {
    throw refuse(
      `it is owned by ${user(uid)} (mode ${octal}), not by this process's user, ${user(self)}`,
      `trust: { owners: [${uid}] }`,
    );
  }
  const allowed = (mode & 0o022) | (trust?.group === gid ? 0o020 : 0);
  if (bits & 0o002 & ~allowed) {
    throw refuse(`every user may write to it (mode ${octal})`, `mode: ${octal}`);
  }
  if (bits & 0o020 & ~allowed) {
    throw refuse(
      `the members of group ${gid} may write to it (mode ${octal})`,
      `trust: { group: ${gid} }`,
    );
  }
}

/** `uid 65534 (nobody)`: a uid and, when it has one, its user name. */
function user(uid: number): string {
  let name: string | undefined;
  try {
    name = libc().userName(uid);
  } catch {
    name = undefined; // no passwd entry, or no NSS module: the number says enough
  }
  return name === undefined ? `uid ${uid}` : `uid ${uid} (${name})`;
}

function closedError(name: string): MemallocError {
  return new MemallocError(`Store "${name}" is closed`, {
    code: "ERR_MEMALLOC_CLOSED",
    store: name,
  });
}

/**
 * Whether a segment whose magic is 0 is one whose header was never finished: its creator died
 * after writing some of the fields before the magic (version, size, creation time, pid), which
 * is all it had written. Everything else in the first 256 bytes (the rest of the header and the
 * store header, which nobody writes before the magic) must still be zero; a shared-memory object
 * with anything there is not memalloc's, and is refused untouched.
 */
function isUnfinished(buffer: ArrayBuffer, length: number): boolean {
  const words = new Uint32Array(buffer, 0, Math.min(length, 256) / 4);
  for (let i = SEGMENT_HEADER_BYTES / 4; i < words.length; i++) if (words[i] !== 0) return false;
  return true;
}

/** The lock kind of a segment created now: `MEMALLOC_LOCK`, else the mutex where glibc has it. */
function defaultLockKind(): LockKind {
  const asked = readEnv(LOCK_ENV);
  if (asked === "mutex" || asked === "flock") return asked;
  if (asked !== undefined) {
    throw new TypeError(`${LOCK_ENV} must be "mutex" or "flock", got ${describe(asked)}`);
  }
  return libc().mutex === undefined ? "flock" : "mutex";
}

/** Throws a `TypeError`/`RangeError` for bad `lock` or `lockTimeout` options. */
export function checkLockOptions(lock: unknown, lockTimeout: unknown): void {
  if (lock !== undefined && lock !== "mutex" && lock !== "flock") {
    throw new TypeError(`lock must be "mutex" or "flock", got ${describe(lock)}`);
  }
  if (lockTimeout === undefined) return;
  if (typeof lockTimeout !== "number" || Number.isNaN(lockTimeout)) {
    throw new TypeError(
      `lockTimeout must be a number of milliseconds, got ${describe(lockTimeout)}`,
    );
  }
  if (!(lockTimeout >= 0 && lockTimeout <= MAX_LOCK_TIMEOUT)) {
    throw new RangeError(
      `lockTimeout must be from 0 to ${MAX_LOCK_TIMEOUT} ms, got ${describe(lockTimeout)}`,
    );
  }
}

/** Refuses a segment that memalloc did not write or that has a layout this code cannot read. */
function checkHeader(name: string, view: DataView, length: number): LockKind {
  const magic = view.getUint32(SEG_MAGIC, true);
  if (magic !== MAGIC) {
    throw new MemallocError(
      `Cannot open store "${name}": it is not a memalloc segment (magic 0x${
        magic.toString(16).padStart(8, "0")
      })`,
      { code: "ERR_MEMALLOC_FORMAT", store: name },
    );
  }
  const version = view.getUint32(SEG_VERSION, true);
  if (version < OLDEST_LAYOUT_VERSION || version > LAYOUT_VERSION) {
    throw new MemallocError(
      `Cannot open store "${name}": its layout version is ${version}, this memalloc reads versions ${OLDEST_LAYOUT_VERSION} to ${LAYOUT_VERSION}; it was made by ${
        version < LAYOUT_VERSION ? "an older" : "a newer"
      } memalloc: upgrade every process that shares it, or once none uses it, remove it with Memalloc.unlink("${name}") (its entries are lost)`,
      { code: "ERR_MEMALLOC_VERSION", store: name },
    );
  }
  const recorded = view.getFloat64(SEG_SIZE, true);
  if (recorded !== length) {
    throw new MemallocError(
      `Cannot open store "${name}": its header says ${recorded} bytes but the segment is ${length}`,
      { code: "ERR_MEMALLOC_CORRUPT", store: name },
    );
  }
  const kind = view.getUint32(SEG_LOCK_KIND, true);
  if (kind === LOCK_KIND_MUTEX) return "mutex";
  if (kind === LOCK_KIND_FLOCK) return "flock";
  throw new MemallocError(
    `Cannot open store "${name}": its header names lock kind ${kind}, which this memalloc does not know`,
    { code: "ERR_MEMALLOC_CORRUPT", store: name },
  );
}
