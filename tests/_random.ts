/**
 * The seeded random generator every test, benchmark and stress script shares, so that a seed
 * gives the same sequence everywhere, on Deno and on Bun.
 *
 * @module
 */

/**
 * mulberry32: a small, fast 32-bit pseudo-random generator.
 *
 * @param seed Any 32-bit integer.
 * @returns A function that returns numbers in [0, 1), the same sequence for the same seed.
 */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
