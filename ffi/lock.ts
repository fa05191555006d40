/**
 * The store's lock, of the kind its segment header records:
 * - `mutex`: a process-shared, robust `pthread_mutex_t` inside the segment (glibc only). About
 *   20 ns a lock/unlock pair uncontended (about 0.1 µs from Node, whose `node:ffi` calls cost
 *   more). When its holder dies, the kernel hands it to the next locker with `EOWNERDEAD`,
 *   which then repairs the store.
 * - `flock`: `flock(2)` on the segment's descriptor, which the kernel drops when its holder dies.
 *   About 0.6 µs a pair; for C libraries whose `pthread_mutex_t` is not glibc's.
 *
 * Waits are bounded by a timeout: a holder that is stopped (SIGSTOP, a debugger) rather than
 * dead gives the others an `ERR_MEMALLOC_LOCK_TIMEOUT` error naming its pid, and a mutex whose
 * bytes are damaged, or that a thread which no longer exists seems to hold, is initialised
 * again (under an `flock` taken for that alone, so two processes never do it at once).
 *
 * @module
 */
import {
  LOCK_KIND_FLOCK,
  LOCK_KIND_MUTEX,
  SEG_LOCK_GENERATION,
  SEG_LOCK_HOLDER,
  SEG_MUTEX,
  SEG_MUTEX_KIND,
  SEGMENT_HEADER_BYTES,
} from "../allocator/layout.ts";
import { MemallocError } from "../errors.ts";
import {
  EBUSY,
  EDEADLK,
  EINTR,
  EINVAL,
  EOWNERDEAD,
  EPERM,
  ETIMEDOUT,
  EWOULDBLOCK,
  LOCK_EX,
  LOCK_NB,
  LOCK_SH,
  LOCK_UN,
  type Mapping,
  MUTEX_KIND_OFFSET,
  type MutexOps,
  type MutexPointer,
} from "./libc.ts";
import { libc } from "./sys.ts";

/** The lock kinds a store can have; recorded in its segment header when it is created. */
export type LockKind = "mutex" | "flock";

/** The header value of each kind, and back. */
export const LOCK_KINDS: Readonly<Record<LockKind, number>> = {
  mutex: LOCK_KIND_MUTEX,
  flock: LOCK_KIND_FLOCK,
};

/** How long a lock waits for its holder by default before it gives up, in milliseconds. */
export const DEFAULT_LOCK_TIMEOUT = 5_000;

/**
 * Trylocks before a contended mutex lock sleeps in the kernel. Measured with two processes
 * overwriting one store flat out (2 cores): 0, 64, 1,000, 10,000 and 100,000 spins gave 0.56 to
 * 0.62, 0.51 to 0.62, 0.48, 0.42 and 0.37 to 0.44 times one process. Spinning longer only keeps
 * the mutex's cache line away from its holder; a few tries catch a holder that is just leaving.
 */
const SPINS = 16;
/** The owner's thread id in a robust mutex's futex word (the kernel's robust-futex ABI). */
const FUTEX_TID_MASK = 0x3fff_ffff;

/** What a lock attempt came to. */
const TAKEN = 0, TAKEN_FROM_DEAD = 1, NOT_TAKEN = 2, RETRY = 3;
type Outcome = typeof TAKEN | typeof TAKEN_FROM_DEAD | typeof NOT_TAKEN | typeof RETRY;

/** A lock error: `ERR_MEMALLOC_LOCK_TIMEOUT`, or a refused lock kind. */
function lockError(store: string, message: string, code: string): MemallocError {
  return new MemallocError(`Cannot lock store "${store}": ${message}`, { code, store });
}

/** Sleeps `ms` milliseconds without giving up the thread (Atomics.wait on a private word). */
function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * `flock(fd, op)` without blocking in the kernel: tries, then sleeps and tries again (from 50 µs
 * up to 10 ms apart) until `timeoutMs` has passed.
 *
 * @returns 0 when the lock was taken, -1 when the time ran out, or the errno of a failure.
 */
export function flockWithin(fd: number, op: number, timeoutMs: number): number {
  const c = libc();
  const deadline = performance.now() + timeoutMs;
  for (let pause = 0.05;;) {
    if (c.flock(fd, op | LOCK_NB) === 0) return 0;
    const errno = c.errno();
    if (errno === EINTR) continue;
    if (errno !== EWOULDBLOCK) return errno;
    if (performance.now() >= deadline) return -1;
    sleep(pause);
    pause = Math.min(pause * 2, 10);
  }
}

/** The C library's mutex functions, or the error for a store that needs them. */
function mutexOps(store: string): MutexOps {
  const ops = libc().mutex;
  if (ops === undefined) {
    throw new MemallocError(
      `Cannot open store "${store}": its lock is a glibc robust mutex, and this process's C library (${
        libc().paths.join(", ")
      }) is not glibc; open it from a glibc process, or create the store with lock: "flock" (MEMALLOC_LOCK=flock) for every process to use flock`,
      { code: "ERR_MEMALLOC_LOCK_KIND", store },
    );
  }
  return ops;
}

/**
 * Initialises the mutex of a segment being created (its creator holds the creation `flock`).
 *
 * @throws {MemallocError} When the C library has no robust mutex, or `pthread_mutex_init` fails.
 */
export function initMutex(store: string, mapping: Mapping): void {
  const ops = mutexOps(store);
  const errno = initAndRecord(
    ops,
    ops.pointer(mapping.address + BigInt(SEG_MUTEX)),
    mapping.buffer,
  );
  if (errno !== 0) {
    throw new MemallocError(
      `Cannot create store "${store}": pthread_mutex_init failed (${errno})`,
      {
        code: "ERR_MEMALLOC_LOCK_KIND",
        syscall: "pthread_mutex_init",
        errno,
        store,
      },
    );
  }
}

/** The u32 index of the mutex's type word, and of its copy in the segment header. */
const KIND_WORD = (SEG_MUTEX + MUTEX_KIND_OFFSET) >>> 2, KIND_COPY = SEG_MUTEX_KIND >>> 2;

/** `pthread_mutex_init`, then records the type word it wrote (see `SEG_MUTEX_KIND`). */
function initAndRecord(ops: MutexOps, mutex: MutexPointer, buffer: ArrayBuffer): number {
  const errno = ops.init(mutex);
  if (errno === 0) {
    const header = new Uint32Array(buffer, 0, SEGMENT_HEADER_BYTES >>> 2);
    Atomics.store(header, KIND_COPY, Atomics.load(header, KIND_WORD));
  }
  return errno;
}

/** One handle's lock on a segment: see the module documentation. */
export class SegmentLock {
  /** The lock's kind, as the segment header records it. */
  readonly kind: LockKind;
  readonly #store: string;
  readonly #fd: number;
  readonly #header: Uint32Array;
  readonly #timeoutMs: number;
  readonly #pid: number;
  readonly #ops: MutexOps | undefined;
  readonly #mutex: MutexPointer;

  /**
   * @param store The store name, for messages.
   * @param fd The segment's descriptor (for `flock`, and the mutex's recovery).
   * @param mapping The segment's mapping: the header and the mutex in it.
   * @param kind The kind the header records.
   * @param timeoutMs How long `lock` waits for a holder before it gives up.
   * @throws {MemallocError} `ERR_MEMALLOC_LOCK_KIND` for a mutex this C library cannot take.
   */
  constructor(store: string, fd: number, mapping: Mapping, kind: LockKind, timeoutMs: number) {
    this.kind = kind;
    this.#store = store;
    this.#fd = fd;
    this.#header = new Uint32Array(mapping.buffer, 0, SEGMENT_HEADER_BYTES >>> 2);
    this.#timeoutMs = timeoutMs;
    this.#pid = libc().getpid();
    if (kind === "mutex") {
      this.#ops = mutexOps(store);
      this.#mutex = this.#ops.pointer(mapping.address + BigInt(SEG_MUTEX));
    } else {
      this.#ops = undefined;
      this.#mutex = null;
    }
  }

  /** The pid of the process that holds the lock, as it recorded; 0 when it is free. */
  get holder(): number {
    return Atomics.load(this.#header, SEG_LOCK_HOLDER >>> 2);
  }

  /**
   * Takes the lock, waiting at most the timeout for its holder.
   *
   * @param exclusive `false` for a shared `flock` (readers that change nothing); the mutex is
   * always exclusive.
   * @returns `true` when the previous holder died holding it (the caller repairs the store).
   * @throws {MemallocError} `ERR_MEMALLOC_LOCK_TIMEOUT` when a live holder kept it past the
   * timeout; the lock is not taken then.
   */
  lock(exclusive = true): boolean {
    if (this.#ops === undefined) {
      this.#flock(exclusive ? LOCK_EX : LOCK_SH, true);
      Atomics.store(this.#header, SEG_LOCK_HOLDER >>> 2, this.#pid);
      return false;
    }
    const ops = this.#ops;
    const mutex = this.#mutex;
    const header = this.#header;
    for (let attempt = 0;; attempt++) {
      // A mutex whose type word changed is damaged: glibc could misread it (even abort), so it
      // is initialised again before any pthread call sees it.
      let result = header[KIND_WORD] === header[KIND_COPY] ? ops.trylock(mutex) : EINVAL;
      for (let spin = 0; result === EBUSY && spin < SPINS; spin++) result = ops.trylock(mutex);
      if (result === EBUSY) result = ops.lockWithin(mutex, this.#timeoutMs);
      const outcome = this.#outcome(result, true);
      if (outcome !== RETRY) return outcome === TAKEN_FROM_DEAD;
      if (attempt > 2) throw this.#systemError("pthread_mutex_clocklock", result);
    }
  }

  /**
   * Takes the lock if it is free, without waiting.
   *
   * @param exclusive As for {@linkcode SegmentLock.lock}.
   * @returns Whether the lock was taken.
   */
  tryLock(exclusive = true): boolean {
    if (this.#ops === undefined) {
      if (!this.#flock(exclusive ? LOCK_EX : LOCK_SH, false)) return false;
      Atomics.store(this.#header, SEG_LOCK_HOLDER >>> 2, this.#pid);
      return true;
    }
    const header = this.#header;
    const result = header[KIND_WORD] === header[KIND_COPY]
      ? this.#ops.trylock(this.#mutex)
      : EINVAL;
    if (result === EBUSY) return false;
    const outcome = this.#outcome(result, false);
    return outcome === TAKEN || outcome === TAKEN_FROM_DEAD;
  }

  /** Releases the lock. */
  unlock(): void {
    Atomics.store(this.#header, SEG_LOCK_HOLDER >>> 2, 0);
    if (this.#ops === undefined) {
      this.#funlock();
      return;
    }
    const result = this.#ops.unlock(this.#mutex);
    if (result !== 0) throw this.#systemError("pthread_mutex_unlock", result);
  }

  /** What a mutex lock call's result means; records this process as the holder if taken. */
  #outcome(result: number, wait: boolean): Outcome {
    if (result === 0) {
      Atomics.store(this.#header, SEG_LOCK_HOLDER >>> 2, this.#pid);
      return TAKEN;
    }
    if (result === EOWNERDEAD) {
      // We hold it now; mark it usable again. The store's repair runs next.
      this.#ops!.consistent(this.#mutex);
      Atomics.store(this.#header, SEG_LOCK_HOLDER >>> 2, this.#pid);
      return TAKEN_FROM_DEAD;
    }
    if (result === EDEADLK) {
      throw lockError(
        this.#store,
        "this thread already holds its lock (a call on the store from inside another call on it)",
        "ERR_MEMALLOC_LOCK_HELD",
      );
    }
    // ETIMEDOUT, or a damaged mutex (EINVAL, ENOTRECOVERABLE, anything else).
    return this.#recover(result === ETIMEDOUT, wait);
  }

  /**
   * After a timed-out or failed mutex lock: when no live thread holds the mutex, its bytes are
   * damaged (a dead holder would have handed it over with EOWNERDEAD): initialise it again and
   * take it. Under an `flock` of its own, so that of several waiters only one does it; the
   * generation tells the others that it was done, and they lock again.
   */
  #recover(timedOut: boolean, wait: boolean): Outcome {
    const header = this.#header;
    const ops = this.#ops!;
    const generation = Atomics.load(header, SEG_LOCK_GENERATION >>> 2);
    if (!this.#flock(LOCK_EX, wait)) return NOT_TAKEN;
    try {
      const intact = header[KIND_WORD] === header[KIND_COPY];
      const result = intact ? ops.trylock(this.#mutex) : EINVAL;
      if (result === 0 || result === EOWNERDEAD) return this.#outcome(result, false);
      if (Atomics.load(header, SEG_LOCK_GENERATION >>> 2) !== generation) {
        return wait ? RETRY : NOT_TAKEN; // initialised again meanwhile, and taken since
      }
      if (result === EBUSY && this.#ownerAlive()) {
        if (timedOut && wait) throw this.#timeoutError();
        return wait ? RETRY : NOT_TAKEN;
      }
      // Damaged: nobody can be holding it. Start it afresh and take it.
      const init = initAndRecord(ops, this.#mutex, header.buffer as ArrayBuffer);
      if (init !== 0) throw this.#systemError("pthread_mutex_init", init);
      Atomics.add(header, SEG_LOCK_GENERATION >>> 2, 1);
      const taken = ops.trylock(this.#mutex);
      if (taken !== 0) throw this.#systemError("pthread_mutex_trylock", taken);
      Atomics.store(header, SEG_LOCK_HOLDER >>> 2, this.#pid);
      return TAKEN_FROM_DEAD; // as after a dead holder: the store repairs
    } finally {
      this.#funlock();
    }
  }

  /**
   * Whether a live thread holds the mutex: the thread whose id its futex word holds exists, in
   * the process that recorded itself as the holder. A holder records its pid as soon as it has
   * the mutex, so a word that names no thread of the recorded process is damage.
   */
  #ownerAlive(): boolean {
    const tid = Atomics.load(this.#header, SEG_MUTEX >>> 2) & FUTEX_TID_MASK;
    const pid = this.holder;
    if (tid === 0 || pid === 0) return false;
    const c = libc();
    return c.tgkill(pid, tid, 0) === 0 || c.errno() === EPERM;
  }

  /** `flock` with `op`, polling until the timeout (or trying once, when `wait` is false). */
  #flock(op: number, wait: boolean): boolean {
    const result = flockWithin(this.#fd, op, wait ? this.#timeoutMs : 0);
    if (result > 0) throw this.#systemError("flock", result);
    if (result < 0 && wait) throw this.#timeoutError();
    return result === 0;
  }

  #timeoutError(): MemallocError {
    return lockError(
      this.#store,
      `process ${
        this.holder || "(unknown)"
      } has held its lock for over ${this.#timeoutMs} ms (stopped, or busy in a long call); the lock was not taken and nothing was changed`,
      "ERR_MEMALLOC_LOCK_TIMEOUT",
    );
  }

  #funlock(): void {
    const c = libc();
    while (c.flock(this.#fd, LOCK_UN) !== 0 && c.errno() === EINTR);
  }

  #systemError(syscall: string, errno: number): MemallocError {
    return new MemallocError(
      `Cannot lock store "${this.#store}": ${syscall} failed (errno ${errno})`,
      {
        code: "ERR_MEMALLOC_LOCK",
        syscall,
        errno,
        store: this.#store,
      },
    );
  }
}
