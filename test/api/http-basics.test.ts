import { describe, expect, it } from "vitest";
import { call } from "../support/api";

interface Problem {
  type: string;
  title: string;
  status: number;
  code: string;
  detail?: string;
  requestId: string;
  errors?: { path: string; message: string }[];
}

function expectProblem(res: { status: number; headers: Headers; body: unknown }, status: number, code: string) {
  expect(res.status).toBe(status);
  expect(res.headers.get("content-type")).toContain("application/problem+json");
  const body = res.body as Problem;
  expect(body).toMatchObject({ status, code });
  expect(body.type).toMatch(/^urn:circle:problem:/);
  expect(body.title).toBeTruthy();
  expect(body.requestId).toBe(res.headers.get("x-request-id"));
  return body;
}

describe("HTTP conventions", () => {
  it("answers unknown routes with a 404 problem", async () => {
    expectProblem(await call("GET", "/v1/nope"), 404, "not_found");
  });

  it("answers a wrong method with 405, a problem and an Allow header", async () => {
    const res = await call("DELETE", "/health");
    expectProblem(res, 405, "method_not_allowed");
    expect(res.headers.get("allow")).toContain("GET");
  });

  it("answers malformed JSON with a 400 problem, not a 500", async () => {
    const res = await call("POST", "/v1/events", {
      rawBody: "{not json",
      headers: { "content-type": "application/json" },
    });
    expectProblem(res, 400, "validation_failed");
  });

  it("refuses bodies over the size limit with 413", async () => {
    const res = await call("POST", "/v1/events", {
      rawBody: JSON.stringify({ events: [], pad: "x".repeat(1_100_000) }),
      headers: { "content-type": "application/json" },
    });
    expectProblem(res, 413, "payload_too_large");
  });

  it("serves the OpenAPI document and the docs page", async () => {
    const spec = await call<{ openapi: string; paths: Record<string, unknown> }>("GET", "/openapi.json");
    expect(spec.status).toBe(200);
    expect(spec.body.openapi).toBe("3.1.0");
    expect(Object.keys(spec.body.paths)).toEqual(
      expect.arrayContaining(["/health", "/v1/events", "/v1/admin/analytics/dau"]),
    );
    const docs = await call("GET", "/docs");
    expect(docs.status).toBe(200);
    expect(docs.text).toContain("/openapi.json");
  });

  it("answers CORS preflights and exposes the request id", async () => {
    const res = await call("OPTIONS", "/v1/events", {
      headers: { origin: "https://app.example", "access-control-request-method": "POST" },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
    const get = await call("GET", "/health", { headers: { origin: "https://app.example" } });
    expect(get.headers.get("access-control-expose-headers")).toContain("X-Request-Id");
  });
});
