// A Worker for memalloc_test.ts: opens its own handle on a store and writes names w0..w{n-1}.
import { Memalloc } from "../mod.ts";
import { parentPort } from "./_thread.ts";

const parent = await parentPort();
parent.onMessage(({ store: name, count }: { store: string; count: number }) => {
  using store = Memalloc.open(name, { maxMemory: 4 << 20 });
  for (let i = 0; i < count; i++) store.write(`w${i}`, { from: "worker", i });
  parent.postMessage({ done: count, seen: store.read("main-0") !== undefined });
});
// Say we are listening: a message posted before the handler is set may be lost (Bun).
parent.postMessage({ ready: true });
