/**
 * The data of the HTTP benchmark, shared by bench/http_bench.ts (which stores it) and
 * bench/_http_server.ts (which serves it).
 *
 * @module
 */
import { structuredValue } from "./_compare_data.ts";

/** Sessions in every source; a request's id is taken modulo this. */
export const SESSIONS = 1024;

/** The session stored under id `i`: the 1 KiB object of the comparison benchmark. */
export function session(i: number): Record<string, unknown> {
  return { ...structuredValue(), id: i };
}

/** The name session `i` is stored under. */
export function sessionKey(i: number): string {
  return `session:${i}`;
}
