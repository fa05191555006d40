import assert from "node:assert/strict";
import { createClient, createCluster } from "redis";
import { Memalloc } from "../mod.ts";
import { NearCache } from "../redis/near_cache.ts";
import { RedisStore } from "../redis/store.ts";
import { type RedisCluster, redisClusterTest } from "./_redis.ts";
import { uniqueName } from "./_spawn.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A connected cluster client, as an application makes one. */
async function clusterClient(cluster: RedisCluster) {
  const client = createCluster({ rootNodes: [{ url: cluster.nodes[0]!.url }] });
  client.on("error", () => {});
  await client.connect();
  return client;
}

/** A plain client of one node, to look at the keys it holds. */
async function nodeClient(url: string) {
  const client = createClient({ url, disableClientInfo: true });
  client.on("error", () => {});
  await client.connect();
  return client;
}

/** Store names whose keys live on node 0 and on the last node (slot ranges are in node order). */
async function namesOnTwoShards(cluster: RedisCluster): Promise<[string, string]> {
  const probe = await nodeClient(cluster.nodes[0]!.url);
  try {
    let first: string | undefined;
    let last: string | undefined;
    for (let i = 0; first === undefined || last === undefined; i++) {
      const name = uniqueName(`cluster-${i}`);
      const slot = Number(await probe.sendCommand(["CLUSTER", "KEYSLOT", `{${name}}`]));
      if (slot < 5000) first ??= name;
      if (slot > 11000) last ??= name;
    }
    return [first, last];
  } finally {
    await probe.close();
  }
}

/** The number of keys of store `name` on each node. */
async function keysPerNode(cluster: RedisCluster, name: string): Promise<number[]> {
  const counts: number[] = [];
  for (const node of cluster.nodes) {
    const client = await nodeClient(node.url);
    try {
      counts.push((await client.keys(`memalloc:{${name}}:*`)).length);
    } finally {
      await client.close();
    }
  }
  return counts;
}

redisClusterTest(
  "RedisStore.connect with a cluster client: each store lives whole on the shard of its name, with the seed's semantics",
  async (cluster) => {
    const client = await clusterClient(cluster);
    const [a, b] = await namesOnTwoShards(cluster);
    const first = await RedisStore.connect(client, a, { maxMemory: 10_000 });
    const second = await RedisStore.connect(client, b);
    try {
      await first.write("greeting", "Foobar");
      await first.write("greeting", (await first.read<string>("greeting")) + "123");
      assert.equal(await first.read("greeting"), "Foobar123");
      await second.write("greeting", { from: "the other shard" });
      assert.deepEqual(await second.read("greeting"), { from: "the other shard" });
      assert.equal(await first.add("greeting", "taken"), false);
      const { version } = (await first.info("greeting"))!;
      assert.equal(await first.write("greeting", "v2", { ifVersion: version }), true);
      assert.equal(await first.write("greeting", "v3", { ifVersion: version }), false);
      assert.equal(await first.increment("hits", 2), 2);
      assert.equal(await first.delete("greeting"), true);
      assert.equal(await first.read("greeting"), undefined);

      // Eviction on the server, in write order, down to the watermark (80% of 10,000 bytes).
      for (let i = 0; i < 120; i++) await first.write(`k${i}`, "x".repeat(98));
      const stats = await first.stats();
      assert.ok(stats.bytesUsed <= 10_000, `bytes ${stats.bytesUsed}`);
      assert.ok(stats.evictions > 0);
      assert.equal(await first.read("k0"), undefined, "the oldest went first");
      assert.equal(await first.read("k119"), "x".repeat(98));

      const perNode = [await keysPerNode(cluster, a), await keysPerNode(cluster, b)];
      for (const [i, counts] of perNode.entries()) {
        assert.equal(counts.filter((n) => n > 0).length, 1, `store ${i}: keys on ${counts}`);
      }
      assert.ok(perNode[0]![0]! > 0, "the first store is on the first node");
      assert.ok(perNode[1]!.at(-1)! > 0, "the second store is on the last node");
    } finally {
      await first.purge();
      await second.purge();
      await first.close();
      await second.close();
      assert.equal(client.isReady, true, "the store leaves a client it was given open");
      await client.close();
    }
  },
  { timeout: 60_000 },
);

redisClusterTest(
  "RedisStore.increment and add on a cluster: counters of concurrent clients are exact, one add wins",
  async (cluster) => {
    const clients = [await clusterClient(cluster), await clusterClient(cluster)];
    const name = uniqueName("cluster-count");
    const stores = await Promise.all(clients.map((c) => RedisStore.connect(c, name)));
    try {
      await Promise.all(
        stores.flatMap((store) =>
          [0, 1].map(async () => {
            for (let i = 0; i < 100; i++) await store.increment("n");
          })
        ),
      );
      assert.equal(await stores[0]!.read("n"), 400);
      const wins = await Promise.all(stores.map((store, i) => store.add("job", `worker-${i}`)));
      assert.deepEqual(wins.filter(Boolean).length, 1);
    } finally {
      await stores[0]!.purge();
      await Promise.all(stores.map((store) => store.close()));
      await Promise.all(clients.map((c) => c.close()));
    }
  },
  { timeout: 60_000 },
);

redisClusterTest(
  "RedisStore.watch and NearCache on a cluster: a write through another cluster client invalidates the local copy",
  async (cluster) => {
    const clients = [await clusterClient(cluster), await clusterClient(cluster)];
    const name = uniqueName("cluster-watch");
    const reader = await RedisStore.connect(clients[0]!, name);
    const writer = await RedisStore.connect(clients[1]!, name);
    const localName = uniqueName("cluster-near");
    const cache = await NearCache.open(localName, reader, { lease: 200 });
    try {
      const heard: (string | null)[] = [];
      const stop = await reader.subscribe((changed) => heard.push(changed));
      assert.equal(reader.listening, true);
      await writer.write("product:1", { price: 30 });
      const deadline = Date.now() + 5_000;
      while (!heard.includes("product:1") && Date.now() < deadline) await sleep(10);
      assert.ok(heard.includes("product:1"), `heard ${JSON.stringify(heard)}`);
      stop();

      while (!cache.stats().watched && Date.now() < deadline + 5_000) await sleep(10);
      assert.equal(cache.stats().watched, true, "a leader listens");
      assert.deepEqual(await cache.get("product:1"), { price: 30 });
      assert.deepEqual(cache.peek("product:1"), { price: 30 }, "kept as a local copy");
      await writer.write("product:1", { price: 31 });
      const fresh = Date.now() + 5_000;
      while (cache.peek("product:1") !== undefined && Date.now() < fresh) await sleep(5);
      assert.equal(cache.peek("product:1"), undefined, "the stale copy is dropped");
      assert.deepEqual(await cache.get("product:1"), { price: 31 });
    } finally {
      cache.close();
      Memalloc.unlink(localName);
      Memalloc.unlink(`${localName}.near`);
      await writer.purge();
      await reader.close();
      await writer.close();
      await Promise.all(clients.map((c) => c.close()));
    }
  },
  { timeout: 60_000 },
);
