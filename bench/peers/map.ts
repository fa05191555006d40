/**
 * The in-process ceiling: a plain `Map`. Values are kept as given, not copied in or out, and
 * nothing crosses a process boundary, so no shared store can beat it; it shows what sharing
 * costs.
 *
 * @module
 */
import type { Peer } from "./types.ts";

/**
 * Opens a `Map` peer. Bytes are stored by reference (what a `Map` cache does), strings as
 * JavaScript strings; memory is not measurable and reported as undefined.
 *
 * @returns The peer.
 *
 * @example Set and get
 * ```ts
 * import { openMapPeer } from "./map.ts";
 *
 * const peer = openMapPeer();
 * peer.setString("greeting", "hello");
 * console.log(peer.getString("greeting")); // hello
 * peer.close();
 * ```
 */
export function openMapPeer(): Peer {
  const map = new Map<string, Uint8Array | string>();
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();
  /** The counters of `increment`, as numbers. */
  const counters = new Map<string, number>();
  return {
    name: "Map",
    description: "in-process Map, values kept by reference (the ceiling; not shared)",
    sharesAcrossProcesses: false,
    location: undefined,
    getBytes(key) {
      const value = map.get(key);
      return typeof value === "string" ? encoder.encode(value) : value;
    },
    getString(key) {
      const value = map.get(key);
      return value === undefined || typeof value === "string" ? value : decoder.decode(value);
    },
    setBytes(key, value) {
      map.set(key, value);
    },
    setString(key, value) {
      map.set(key, value);
    },
    delete(key) {
      return counters.delete(key) || map.delete(key);
    },
    increment(key) {
      const next = (counters.get(key) ?? 0) + 1;
      counters.set(key, next);
      return next;
    },
    close() {
      map.clear();
      counters.clear();
    },
    memoryBytes() {
      return undefined;
    },
  };
}
