// A Worker for memalloc_test.ts: opens its own handle on a store and writes names w0..w{n-1}.
import { Memalloc } from "../mod.ts";

const scope = self as unknown as {
  onmessage: ((event: MessageEvent<{ store: string; count: number }>) => void) | null;
  postMessage(message: unknown): void;
};
scope.onmessage = (event) => {
  const { store: name, count } = event.data;
  using store = Memalloc.open(name, { maxMemory: 4 << 20 });
  for (let i = 0; i < count; i++) store.write(`w${i}`, { from: "worker", i });
  scope.postMessage({ done: count, seen: store.read("main-0") !== undefined });
};
// Say we are listening: a message posted before the handler is set may be lost (Bun).
scope.postMessage({ ready: true });
