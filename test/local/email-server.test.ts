import { request } from "node:http";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type RunningEmailServer, type SentEmail, startEmailServer } from "../../scripts/local/email-server";
import { freePort } from "../../scripts/local/ports";

const API_KEY = "re_test_0123456789abcdef";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

let server: RunningEmailServer;

beforeAll(async () => {
  server = await startEmailServer({ apiKey: API_KEY, port: await freePort() });
});

afterAll(async () => {
  await server?.stop();
});

beforeEach(async () => {
  await fetch(`${server.url}/__reset`, { method: "POST" });
});

const welcome = (to: string | string[] = "ada@example.com") => ({
  from: "Circle <hello@circle.test>",
  to,
  subject: "Welcome to Circle",
  html: "<p>Hi <strong>Ada</strong></p>",
  text: "Hi Ada",
});

async function send(
  body: unknown,
  options: { apiKey?: string | null; idempotencyKey?: string; url?: string } = {},
): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  const headers: Record<string, string> = { "Content-Type": "application/json" };
  const apiKey = options.apiKey === undefined ? API_KEY : options.apiKey;
  if (apiKey !== null) headers.Authorization = `Bearer ${apiKey}`;
  if (options.idempotencyKey !== undefined) headers["Idempotency-Key"] = options.idempotencyKey;
  const res = await fetch(`${options.url ?? server.url}/emails`, {
    method: "POST",
    headers,
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown>, headers: res.headers };
}

async function sentMail(query = "", url = server.url): Promise<SentEmail[]> {
  return (await (await fetch(`${url}/__sent${query}`)).json()) as SentEmail[];
}

describe("POST /emails", () => {
  it("accepts a mail, answers its id and records everything it was given", async () => {
    const res = await send(
      {
        ...welcome(["ada@example.com", "Grace <grace@example.com>"]),
        cc: "team@example.com",
        bcc: ["audit@example.com"],
        reply_to: "support@circle.test",
        headers: { "X-Entity-Ref-ID": "welcome-42" },
        tags: [{ name: "category", value: "welcome" }],
      },
      { idempotencyKey: "welcome-user/42" },
    );
    expect(res.status).toBe(200);
    expect(Object.keys(res.body)).toEqual(["id"]);
    expect(res.body.id).toMatch(UUID);

    const [mail, ...rest] = await sentMail();
    expect(rest).toEqual([]);
    expect(mail).toMatchObject({
      id: res.body.id,
      from: "Circle <hello@circle.test>",
      to: ["ada@example.com", "Grace <grace@example.com>"],
      cc: ["team@example.com"],
      bcc: ["audit@example.com"],
      replyTo: ["support@circle.test"],
      subject: "Welcome to Circle",
      html: "<p>Hi <strong>Ada</strong></p>",
      text: "Hi Ada",
      headers: { "X-Entity-Ref-ID": "welcome-42" },
      tags: [{ name: "category", value: "welcome" }],
      idempotencyKey: "welcome-user/42",
    });
    expect(Date.now() - Date.parse(mail?.createdAt ?? "")).toBeLessThan(10_000);
  });

  it("takes `to` as a single string and text-only or html-only bodies", async () => {
    expect((await send({ ...welcome("ada@example.com"), html: undefined })).status).toBe(200);
    expect((await send({ ...welcome("reader@example.com"), text: undefined })).status).toBe(200);
    const mails = await sentMail();
    expect(mails.map((m) => [m.to, m.html, m.text])).toEqual([
      [["ada@example.com"], null, "Hi Ada"],
      [["reader@example.com"], "<p>Hi <strong>Ada</strong></p>", null],
    ]);
  });

  it("filters /__sent by recipient address, including named, cc and bcc recipients", async () => {
    await send(welcome("Ada Lovelace <ada@example.com>"));
    await send({ ...welcome("reader@example.com"), bcc: "ADA@example.com" });
    await send(welcome("another@example.com"));
    const forAda = await sentMail(`?to=${encodeURIComponent("ada@example.com")}`);
    expect(forAda.map((m) => m.to[0])).toEqual(["Ada Lovelace <ada@example.com>", "reader@example.com"]);
    expect(await sentMail("?to=nobody@example.com")).toEqual([]);
  });
});

describe("authentication", () => {
  it("refuses a request without a key with 401 missing_api_key", async () => {
    const res = await send(welcome(), { apiKey: null });
    expect(res.status).toBe(401);
    expect(res.body).toEqual({
      statusCode: 401,
      message: "Missing API key in the authorization header.",
      name: "missing_api_key",
    });
  });

  it("refuses a wrong key with 403 invalid_api_key, and a non-Bearer header as missing", async () => {
    const wrong = await send(welcome(), { apiKey: "re_someone_elses_key" });
    expect(wrong.status).toBe(403);
    expect(wrong.body).toEqual({ statusCode: 403, message: "API key is invalid.", name: "invalid_api_key" });

    const basic = await fetch(`${server.url}/emails`, {
      method: "POST",
      headers: { Authorization: `Basic ${Buffer.from(`${API_KEY}:`).toString("base64")}` },
      body: JSON.stringify(welcome()),
    });
    expect(basic.status).toBe(401);
    expect(await sentMail()).toEqual([]);
  });

  it("blocks a request without a User-Agent before it reaches the API (Cloudflare error 1010)", async () => {
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = request(`${server.url}/emails`, {
        method: "POST",
        headers: { Authorization: `Bearer ${API_KEY}`, "Content-Type": "application/json" },
      });
      req.on("response", (res) => {
        let text = "";
        res.on("data", (chunk) => {
          text += chunk;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
      });
      req.on("error", reject);
      req.end(JSON.stringify(welcome()));
    });
    expect(status).toBe(403);
    expect(text).toBe("error code: 1010");
    expect(await sentMail()).toEqual([]);
  });
});

describe("validation", () => {
  const cases: [string, Record<string, unknown>, number, string, string][] = [
    ["missing to", { ...welcome(), to: undefined }, 422, "missing_required_field", "Missing `to` field."],
    ["empty to list", { ...welcome([]) }, 422, "missing_required_field", "Missing `to` field."],
    [
      "missing subject",
      { ...welcome(), subject: undefined },
      422,
      "missing_required_field",
      "Missing `subject` field.",
    ],
    ["missing from", { ...welcome(), from: undefined }, 422, "missing_required_field", "Missing `from` field."],
    [
      "neither html nor text",
      { ...welcome(), html: undefined, text: undefined },
      422,
      "missing_required_field",
      "Missing `html` or `text` field.",
    ],
    [
      "malformed recipient",
      welcome(["ada@example.com", "not-an-address"]),
      422,
      "validation_error",
      "Invalid `to` field. The email address needs to follow the `email@example.com` or `Name <email@example.com>` format.",
    ],
    [
      "malformed sender",
      { ...welcome(), from: "Circle <hello@circle>" },
      422,
      "validation_error",
      "Invalid `from` field. The email address needs to follow the `email@example.com` or `Name <email@example.com>` format.",
    ],
    [
      "subject not a string",
      { ...welcome(), subject: 42 },
      422,
      "validation_error",
      "The `subject` field must be a `string`.",
    ],
    [
      "more than 50 recipients",
      welcome(Array.from({ length: 51 }, (_, i) => `user${i}@example.com`)),
      422,
      "validation_error",
      "The `to` field must have at most 50 recipients.",
    ],
  ];
  for (const [what, body, status, name, message] of cases) {
    it(`${what} → ${status} ${name}`, async () => {
      const res = await send(body);
      expect(res.status).toBe(status);
      expect(res.body).toEqual({ statusCode: status, message, name });
    });
  }

  it("refuses tags outside Resend's character set and bodies that are not JSON objects", async () => {
    const tags = await send({ ...welcome(), tags: [{ name: "user id", value: "42" }] });
    expect(tags.status).toBe(422);
    expect(tags.body.name).toBe("validation_error");
    expect(tags.body.message).toMatch(/ASCII letters/);

    const notJson = await send("{from: nope");
    expect(notJson.status).toBe(422);
    expect(notJson.body.name).toBe("validation_error");
    expect(await sentMail()).toEqual([]);
  });
});

describe("Idempotency-Key", () => {
  it("replays the first answer for the same key and payload, without sending again", async () => {
    const first = await send(welcome(), { idempotencyKey: "welcome/1" });
    // Same payload, keys in another order: still the same request.
    const { subject, from, ...rest } = welcome();
    const again = await send({ ...rest, subject, from }, { idempotencyKey: "welcome/1" });
    expect(first.status).toBe(200);
    expect(again).toMatchObject({ status: 200, body: first.body });
    expect((await sentMail()).map((m) => m.id)).toEqual([first.body.id]);
  });

  it("refuses the same key with a different payload: 409 invalid_idempotent_request", async () => {
    await send(welcome(), { idempotencyKey: "welcome/2" });
    const changed = await send({ ...welcome(), subject: "Welcome back" }, { idempotencyKey: "welcome/2" });
    expect(changed.status).toBe(409);
    expect(changed.body).toEqual({
      statusCode: 409,
      name: "invalid_idempotent_request",
      message:
        "This idempotency key has been used with this HTTP method and endpoint within the last 24 hours, but the request body was modified and doesn't match the original request.",
    });
    expect(await sentMail()).toHaveLength(1);
  });

  it("refuses keys longer than 256 characters with 400 invalid_idempotency_key", async () => {
    const res = await send(welcome(), { idempotencyKey: "k".repeat(257) });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({
      statusCode: 400,
      name: "invalid_idempotency_key",
      message: "Idempotency keys, if present, must have between 1 and 256 characters.",
    });
    expect((await send(welcome(), { idempotencyKey: "k".repeat(256) })).status).toBe(200);
  });

  it("does not remember refused requests under the key: a corrected retry goes through", async () => {
    const broken = await send({ ...welcome(), to: "nobody" }, { idempotencyKey: "welcome/3" });
    expect(broken.status).toBe(422);
    const fixed = await send(welcome(), { idempotencyKey: "welcome/3" });
    expect(fixed.status).toBe(200);
    expect(await sentMail()).toHaveLength(1);
  });

  it("answers 409 concurrent_idempotent_requests while the first request with the key is in progress", async () => {
    await fetch(`${server.url}/__latency`, { method: "POST", body: JSON.stringify({ ms: 300 }) });
    const started = Date.now();
    const results = await Promise.all([
      send(welcome(), { idempotencyKey: "welcome/4" }),
      send(welcome(), { idempotencyKey: "welcome/4" }),
    ]);
    // Both were in flight together: the pair took about one latency, not two.
    expect(Date.now() - started).toBeLessThan(550);
    const statuses = results.map((r) => r.status).sort();
    expect(statuses).toEqual([200, 409]);
    const conflict = results.find((r) => r.status === 409);
    expect(conflict?.body).toEqual({
      statusCode: 409,
      name: "concurrent_idempotent_requests",
      message: "There is another request in progress with the same idempotency key.",
    });

    // Once the first one is done, the key replays its answer.
    const winner = results.find((r) => r.status === 200);
    const replay = await send(welcome(), { idempotencyKey: "welcome/4" });
    expect(replay).toMatchObject({ status: 200, body: winner?.body });
    expect(await sentMail()).toHaveLength(1);
  });

  it("sends exactly once however many identical requests race, and different keys do not block each other", async () => {
    const racing = await Promise.all(Array.from({ length: 8 }, () => send(welcome(), { idempotencyKey: "welcome/5" })));
    const ok = racing.filter((r) => r.status === 200);
    expect(ok.length).toBeGreaterThanOrEqual(1);
    expect(new Set(ok.map((r) => r.body.id)).size).toBe(1);
    expect(racing.every((r) => r.status === 200 || r.body.name === "concurrent_idempotent_requests")).toBe(true);

    await fetch(`${server.url}/__latency`, { method: "POST", body: JSON.stringify({ ms: 200 }) });
    const distinct = await Promise.all([
      send(welcome(), { idempotencyKey: "welcome/6" }),
      send(welcome(), { idempotencyKey: "welcome/7" }),
    ]);
    expect(distinct.map((r) => r.status)).toEqual([200, 200]);
    expect(await sentMail()).toHaveLength(3);
  });

  it("forgets a key after 24 hours: the same request then sends a new mail", async () => {
    let clock = Date.parse("2026-05-01T08:00:00Z");
    const timed = await startEmailServer({ apiKey: API_KEY, port: await freePort(), now: () => clock });
    try {
      const first = await send(welcome(), { idempotencyKey: "digest/2026-05-01", url: timed.url });
      clock += 24 * 60 * 60 * 1000 - 1000;
      const within = await send(welcome(), { idempotencyKey: "digest/2026-05-01", url: timed.url });
      expect(within.body.id).toBe(first.body.id);
      clock += 2000;
      const after = await send(welcome(), { idempotencyKey: "digest/2026-05-01", url: timed.url });
      expect(after.status).toBe(200);
      expect(after.body.id).not.toBe(first.body.id);
      expect((await sentMail("", timed.url)).map((m) => m.createdAt)).toEqual([
        "2026-05-01T08:00:00.000Z",
        "2026-05-02T08:00:01.000Z",
      ]);
    } finally {
      await timed.stop();
    }
  });
});

describe("fault injection", () => {
  const fault = (body: unknown) => fetch(`${server.url}/__faults`, { method: "POST", body: JSON.stringify(body) });

  it("fails the next N sends with Resend's error body, then recovers", async () => {
    expect((await fault({ status: 503, count: 2, retryAfterSeconds: 3 })).status).toBe(200);
    for (let i = 0; i < 2; i++) {
      const res = await send(welcome());
      expect(res.status).toBe(503);
      expect(res.body).toEqual({
        statusCode: 503,
        message: "API is temporarily unavailable",
        name: "service_unavailable",
      });
      expect(res.headers.get("retry-after")).toBe("3");
    }
    expect((await send(welcome())).status).toBe(200);
    expect(await sentMail()).toHaveLength(1);
  });

  it("429 carries the rate-limit headers; 500 is application_error", async () => {
    await fault({ status: 429, count: 1 });
    const limited = await send(welcome());
    expect(limited.status).toBe(429);
    expect(limited.body.name).toBe("rate_limit_exceeded");
    expect(limited.headers.get("retry-after")).toBe("1");
    expect(limited.headers.get("ratelimit-remaining")).toBe("0");

    await fault({ status: 500, count: 1 });
    const broken = await send(welcome());
    expect(broken.body).toEqual({
      statusCode: 500,
      message: "An unexpected error occurred.",
      name: "application_error",
    });
  });

  it("without a count fails until cleared", async () => {
    await fault({ status: 503 });
    for (let i = 0; i < 5; i++) expect((await send(welcome())).status).toBe(503);
    expect(((await (await fetch(`${server.url}/__faults`)).json()) as { fault: unknown }).fault).toMatchObject({
      status: 503,
      remaining: null,
    });
    expect((await fetch(`${server.url}/__faults`, { method: "DELETE" })).status).toBe(204);
    expect((await send(welcome())).status).toBe(200);
  });

  it("a retrying client with backoff gets through once, with one idempotency key", async () => {
    await fault({ status: 503, count: 2, retryAfterSeconds: 0 });
    const attempts: number[] = [];
    let res = await send(welcome(), { idempotencyKey: "retry/1" });
    attempts.push(res.status);
    for (let attempt = 1; res.status >= 500 && attempt < 5; attempt++) {
      await new Promise((r) => setTimeout(r, 10 * 2 ** attempt));
      res = await send(welcome(), { idempotencyKey: "retry/1" });
      attempts.push(res.status);
    }
    expect(attempts).toEqual([503, 503, 200]);
    expect((await sentMail()).map((m) => m.idempotencyKey)).toEqual(["retry/1"]);
  });

  it("refuses a malformed fault", async () => {
    expect((await fault({ status: 418 })).status).toBe(400);
    expect((await fault({ status: 503, count: 0 })).status).toBe(400);
    expect((await send(welcome())).status).toBe(200);
  });
});

describe("faults scoped to one recipient", () => {
  const fault = (body: unknown) => fetch(`${server.url}/__faults`, { method: "POST", body: JSON.stringify(body) });

  it("fail only mail to that address (any spelling of it), until cleared for it", async () => {
    expect((await fault({ status: 503, to: "Ada@Example.com", retryAfterSeconds: 4 })).status).toBe(200);
    const refused = await send(welcome("Ada Lovelace <ada@example.com>"));
    expect(refused.status).toBe(503);
    expect(refused.headers.get("retry-after")).toBe("4");
    expect((await send(welcome("grace@example.com"))).status).toBe(200);
    // A recipient among several is enough.
    expect((await send(welcome(["grace@example.com", "ada@example.com"]))).status).toBe(503);
    expect((await fetch(`${server.url}/__faults?to=ada@example.com`, { method: "DELETE" })).status).toBe(204);
    expect((await send(welcome())).status).toBe(200);
    expect((await sentMail()).map((m) => m.to)).toEqual([["grace@example.com"], ["ada@example.com"]]);
  });

  it("count down per address and leave other faults alone", async () => {
    await fault({ status: 429, count: 1, to: "ada@example.com" });
    expect((await send(welcome())).status).toBe(429);
    expect((await send(welcome())).status).toBe(200);
    expect((await fault({ status: 503, to: 42 })).status).toBe(400);
  });
});

describe("GET /emails/{id}", () => {
  const get = (id: string, apiKey = API_KEY) =>
    fetch(`${server.url}/emails/${id}`, { headers: { Authorization: `Bearer ${apiKey}` } });

  it("returns the mail as Resend retrieves it", async () => {
    const { body } = await send({ ...welcome(), tags: [{ name: "category", value: "welcome" }] });
    const res = await get(String(body.id));
    expect(res.status).toBe(200);
    const email = (await res.json()) as Record<string, unknown>;
    expect(email).toMatchObject({
      object: "email",
      id: body.id,
      to: ["ada@example.com"],
      from: "Circle <hello@circle.test>",
      subject: "Welcome to Circle",
      html: "<p>Hi <strong>Ada</strong></p>",
      text: "Hi Ada",
      cc: [],
      bcc: [],
      reply_to: [],
      last_event: "delivered",
      scheduled_at: null,
      tags: [{ name: "category", value: "welcome" }],
    });
    expect(email.created_at).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}\+00$/);
  });

  it("answers unknown ids, bad ids and wrong keys like Resend", async () => {
    const missing = await get("3f2b1a9c-0000-4000-8000-000000000000");
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ statusCode: 404, name: "not_found" });
    const bad = await get("not-a-uuid");
    expect(bad.status).toBe(422);
    expect(await bad.json()).toEqual({
      statusCode: 422,
      name: "invalid_parameter",
      message: "The `id` must be a valid UUID.",
    });
    const { body } = await send(welcome());
    expect((await get(String(body.id), "re_wrong")).status).toBe(403);
  });

  it("unknown endpoints are 404 not_found and wrong methods 405", async () => {
    const unknown = await fetch(`${server.url}/domainz`, { headers: { Authorization: `Bearer ${API_KEY}` } });
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toEqual({
      statusCode: 404,
      message: "The requested endpoint does not exist.",
      name: "not_found",
    });
    const wrongMethod = await fetch(`${server.url}/emails`, {
      method: "DELETE",
      headers: { Authorization: `Bearer ${API_KEY}` },
    });
    expect(wrongMethod.status).toBe(405);
    expect(((await wrongMethod.json()) as { name: string }).name).toBe("method_not_allowed");
  });
});

describe("the mail page", () => {
  it("lists mail newest first, escapes what it shows and renders HTML bodies in a sandboxed frame", async () => {
    await send({ ...welcome(), subject: "First" });
    const { body } = await send({
      ...welcome(),
      subject: "<script>alert(1)</script> Second",
      html: "<h1>Hello</h1><script>parent.document.title='owned'</script>",
      text: "Plain <b>text</b>",
    });
    const res = await fetch(`${server.url}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-security-policy")).toMatch(/default-src 'none'/);
    const page = await res.text();
    expect(page).not.toContain("<script>");
    expect(page).toContain("&lt;script&gt;alert(1)&lt;/script&gt; Second");
    expect(page).toContain("Plain &lt;b&gt;text&lt;/b&gt;");
    expect(page.indexOf("Second")).toBeLessThan(page.indexOf("First"));
    expect(page).toContain(
      `<iframe sandbox="" referrerpolicy="no-referrer" title="HTML body" src="/__sent/${body.id}/html">`,
    );

    const frame = await fetch(`${server.url}/__sent/${body.id}/html`);
    expect(frame.headers.get("content-security-policy")).toMatch(/^sandbox; default-src 'none'/);
    expect(await frame.text()).toBe("<h1>Hello</h1><script>parent.document.title='owned'</script>");
  });
});
