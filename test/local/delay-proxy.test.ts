import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  delayStores,
  parseStoreDelays,
  type RunningDelayProxy,
  startDelayProxy,
} from "../../scripts/local/delay-proxy";
import { freePort } from "../../scripts/local/ports";

/** What the upstream saw of one request. */
interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage["headers"];
  body: Buffer;
}

let upstream: Server;
let origin = "";
const seen: Seen[] = [];
/** Released by the test to let `/stream` send its second chunk. */
let releaseStream: () => void = () => {};

beforeAll(async () => {
  upstream = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body: Buffer.concat(chunks) });
    if (req.url === "/stream") {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write("data: first\n\n");
      await new Promise<void>((resolve) => {
        releaseStream = resolve;
      });
      res.end("data: second\n\n");
      return;
    }
    if (req.url?.startsWith("/echo")) {
      res.writeHead(207, { "content-type": "application/octet-stream", "x-upstream": "yes" });
      res.end(Buffer.concat(chunks));
      return;
    }
    res.writeHead(204).end();
  });
  await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
  origin = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
});

afterAll(async () => {
  upstream.closeAllConnections();
  await new Promise((resolve) => upstream.close(resolve));
});

// One proxy for the file, its delay set per test: a proxy stopped and another started on the same port could
// meet the client's idle keep-alive connection to the old one.
let shared: RunningDelayProxy;
async function withProxy<T>(delayMs: number, run: (proxy: RunningDelayProxy) => Promise<T>): Promise<T> {
  shared ??= await startDelayProxy({ target: origin, delayMs });
  shared.setDelay(delayMs);
  return run(shared);
}

afterAll(async () => {
  await shared?.stop();
});

describe("delay proxy", () => {
  it("forwards method, path, query, headers and body unchanged, and the answer likewise", async () => {
    await withProxy(0, async (proxy) => {
      const body = randomBytes(200_000); // binary, larger than one chunk
      const res = await fetch(`${proxy.url}/echo/a%20b?x=1&y=%C3%A9`, {
        method: "PUT",
        headers: { "content-type": "application/octet-stream", authorization: "Bearer secret-token", "x-custom": "1" },
        body,
      });
      expect(res.status).toBe(207);
      expect(res.headers.get("x-upstream")).toBe("yes");
      expect(Buffer.from(await res.arrayBuffer()).equals(body)).toBe(true);
      const got = seen.at(-1)!;
      expect(got.method).toBe("PUT");
      expect(got.url).toBe("/echo/a%20b?x=1&y=%C3%A9");
      expect(got.headers.authorization).toBe("Bearer secret-token");
      expect(got.headers["x-custom"]).toBe("1");
      expect(got.headers.host).toBe(new URL(origin).host);
      expect(got.body.equals(body)).toBe(true);
    });
  });

  it("holds every request for the configured delay before the store sees it", async () => {
    await withProxy(1_000, async (proxy) => {
      const before = seen.length;
      const received = proxy.requests();
      const t0 = performance.now();
      const pending = fetch(`${proxy.url}/plain`);
      await new Promise((r) => setTimeout(r, 100));
      expect(seen.length).toBe(before); // still held
      expect(proxy.inFlight()).toBe(1);
      expect((await pending).status).toBe(204);
      expect(proxy.inFlight()).toBe(0);
      expect(proxy.requests()).toBe(received + 1);
      expect(performance.now() - t0).toBeGreaterThanOrEqual(995);
      proxy.setDelay(0);
      const t1 = performance.now();
      await fetch(`${proxy.url}/plain`);
      expect(performance.now() - t1).toBeLessThan(995);
    });
  });

  it("delays concurrent requests side by side, like network latency, not one after another", async () => {
    await withProxy(300, async (proxy) => {
      const t0 = performance.now();
      const answers = await Promise.all(Array.from({ length: 10 }, () => fetch(`${proxy.url}/plain`)));
      expect(answers.map((a) => a.status)).toEqual(Array(10).fill(204));
      // One after another this would take 3 s.
      expect(performance.now() - t0).toBeLessThan(1_500);
    });
  });

  it("streams a response through as it arrives", async () => {
    await withProxy(0, async (proxy) => {
      const res = await fetch(`${proxy.url}/stream`);
      const reader = res.body!.getReader();
      const first = await reader.read();
      // The upstream has not finished: the first chunk got here on its own.
      expect(new TextDecoder().decode(first.value)).toBe("data: first\n\n");
      releaseStream();
      let rest = "";
      for (let r = await reader.read(); !r.done; r = await reader.read()) rest += new TextDecoder().decode(r.value);
      expect(rest).toBe("data: second\n\n");
    });
  }, 10_000);

  it("answers 502 when the target cannot be reached", async () => {
    const proxy = await startDelayProxy({ target: `http://127.0.0.1:${await freePort()}`, delayMs: 0 });
    try {
      const res = await fetch(`${proxy.url}/anything`);
      expect(res.status).toBe(502);
      expect(await res.text()).toMatch(/delay proxy: .*ECONNREFUSED/);
    } finally {
      await proxy.stop();
    }
  });

  it("points each delayed store's URL at its own proxy and keeps the Data API path", async () => {
    const env = {
      DATA_API_URL: `${origin}/app/data-api/endpoint/data/v1`,
      UPSTASH_REDIS_REST_URL: origin,
      CLICKHOUSE_URL: origin,
      OTHER: "kept",
    };
    const delayed = await delayStores(env, parseStoreDelays(["mongo=0,redis=0"]));
    try {
      expect(delayed.workerEnv.OTHER).toBe("kept");
      expect(delayed.workerEnv.CLICKHOUSE_URL).toBe(origin); // not asked for: untouched
      expect(delayed.workerEnv.DATA_API_URL).toBe(`${delayed.proxies.mongo!.url}/app/data-api/endpoint/data/v1`);
      expect(delayed.workerEnv.UPSTASH_REDIS_REST_URL).toBe(delayed.proxies.redis!.url);
      expect(delayed.proxies.mongo!.url).not.toBe(delayed.proxies.redis!.url);
      await fetch(`${delayed.workerEnv.DATA_API_URL}/action/findOne`, { method: "POST", body: "{}" });
      expect(seen.at(-1)!.url).toBe("/app/data-api/endpoint/data/v1/action/findOne");
      expect(delayed.proxies.mongo!.requests()).toBe(1);
      expect(delayed.proxies.redis!.requests()).toBe(0);
    } finally {
      await delayed.stop();
    }
  });

  it("parses --delay values and refuses unknown stores or bad numbers", () => {
    expect(parseStoreDelays(["mongo=40", "redis=5,clickhouse=40"])).toEqual({ mongo: 40, redis: 5, clickhouse: 40 });
    expect(() => parseStoreDelays(["postgres=40"])).toThrow(/store=ms/);
    expect(() => parseStoreDelays(["mongo=-1"])).toThrow(/store=ms/);
    expect(() => parseStoreDelays(["mongo"])).toThrow(/store=ms/);
  });
});
