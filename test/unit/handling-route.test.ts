import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { handlingRoute } from "../../src/http/handling-route";

describe("handlingRoute", () => {
  // Registered in the order the streams feature registers them: the static path first.
  const seen: string[] = [];
  const app = new Hono();
  app.use("*", async (c, next) => {
    await next();
    seen.push(handlingRoute(c)?.path ?? "unmatched");
  });
  app.use("/v1/*", async (_c, next) => next());
  app.get("/v1/streams/live", (c) => c.text("live"));
  app.get("/v1/streams/:id", (c) => c.text("one"));

  it("names the route that answered, not a later one the path also matches", async () => {
    seen.length = 0;
    expect(await (await app.request("/v1/streams/live")).text()).toBe("live");
    expect(await (await app.request("/v1/streams/abc")).text()).toBe("one");
    await app.request("/v1/nothing");
    expect(seen).toEqual(["/v1/streams/live", "/v1/streams/:id", "unmatched"]);
  });
});
