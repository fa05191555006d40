/**
 * Worker threads on every runtime: a Web Worker under Deno and Bun, a `node:worker_threads`
 * Worker under Node (which has no Web Worker), behind one small interface on each side.
 *
 * @module
 */
import { runtime } from "../ffi/runtime.ts";

/** One end of a thread's message channel. */
export interface Port {
  /** Calls `handler` with each message's data. */
  onMessage(handler: (data: never) => void): void;
  postMessage(message: unknown): void;
}

/** A started Worker thread, seen from the thread that started it. */
export interface Thread extends Port {
  /** Calls `handler` when the thread throws. */
  onError(handler: (error: Error) => void): void;
  terminate(): void;
}

interface NodeWorker {
  on(event: string, handler: (value: never) => void): void;
  postMessage(message: unknown): void;
  terminate(): void;
}
interface NodeThreads {
  Worker: new (url: URL) => NodeWorker;
  parentPort: NodeWorker | null;
}

/** `node:worker_threads`, through a variable specifier that Deno's checker leaves alone. */
async function nodeThreads(): Promise<NodeThreads> {
  const specifier = "node:worker_threads";
  return await import(specifier) as NodeThreads;
}

/** Starts a module Worker running `url`. */
export async function startThread(url: URL): Promise<Thread> {
  if (runtime === "node") {
    const worker = new (await nodeThreads()).Worker(url);
    return {
      onMessage: (handler) => worker.on("message", handler),
      onError: (handler) => worker.on("error", handler),
      postMessage: (message) => worker.postMessage(message),
      terminate: () => worker.terminate(),
    };
  }
  const worker = new Worker(url.href, { type: "module" });
  return {
    onMessage: (handler) => (worker.onmessage = (event) => handler(event.data as never)),
    onError: (
      handler,
    ) => (worker.onerror = (event) => handler(new Error(String((event as ErrorEvent).message)))),
    postMessage: (message) => worker.postMessage(message),
    terminate: () => worker.terminate(),
  };
}

/** Inside a Worker: the channel to the thread that started it. */
export async function parentPort(): Promise<Port> {
  if (runtime === "node") {
    const port = (await nodeThreads()).parentPort!;
    return {
      onMessage: (handler) => port.on("message", handler),
      postMessage: (message) => port.postMessage(message),
    };
  }
  const scope = self as unknown as {
    onmessage: ((event: MessageEvent) => void) | null;
    postMessage(message: unknown): void;
  };
  return {
    onMessage: (handler) => (scope.onmessage = (event) => handler(event.data as never)),
    postMessage: (message) => scope.postMessage(message),
  };
}
