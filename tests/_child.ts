/**
 * What the test children share: one JSON line per report, and a call's outcome as data.
 *
 * @module
 */

/** Prints `value` as one JSON line, for the parent's `lastJson`. */
export function say(value: unknown): void {
  console.log(JSON.stringify(value));
}

/** What a parent needs to check an error: its class, message and MemallocError fields. */
export function describeError(error: unknown): Record<string, unknown> {
  const e = error as Record<string, unknown>;
  return {
    error: (error as Error).constructor.name,
    message: e.message,
    code: e.code,
    errno: e.errno,
    syscall: e.syscall,
    store: e.store,
  };
}

/** Runs `body`: `{ result }` with what it returned (`null` for nothing), or the error it threw. */
export function attempt(body: () => unknown): Record<string, unknown> {
  try {
    return { result: body() ?? null };
  } catch (error) {
    return describeError(error);
  }
}
