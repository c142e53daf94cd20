import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../scripts/local/ports";
import { type RunningS3Server, startS3Server } from "../../scripts/local/s3-server";
import { currentTestStack } from "../setup/plan";
import { fixtures } from "../support/media-fixtures";

// The Deno entry has no R2 binding: its media store speaks R2's S3 API (SigV4, aws4fetch) to the stand-in.
describe("Deno entry: uploads over the S3 API", () => {
  let deno: ChildProcess;
  let s3: RunningS3Server;
  let base = "";
  let output = "";
  const credentials = { accessKeyId: "deno-media-key", secretAccessKey: randomBytes(24).toString("hex") };

  beforeAll(async () => {
    s3 = await startS3Server({ port: 0, bucket: "circle-media", ...credentials });
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    deno = spawn(
      "node_modules/.bin/deno",
      ["run", "--sloppy-imports", "--allow-net", "--allow-env", "--allow-read", "--allow-sys", "src/deno.ts"],
      {
        env: {
          ...process.env,
          ...currentTestStack().workerBindings,
          PORT: String(port),
          DENO_NO_UPDATE_CHECK: "1",
          MEDIA_PUBLIC_BASE_URL: `${base}/media`,
          MEDIA_S3_ENDPOINT: s3.url,
          MEDIA_S3_ACCESS_KEY_ID: credentials.accessKeyId,
          MEDIA_S3_SECRET_ACCESS_KEY: credentials.secretAccessKey,
        },
      },
    );
    deno.stdout?.on("data", (d) => (output += d));
    deno.stderr?.on("data", (d) => (output += d));
    const deadline = Date.now() + 45_000;
    while (Date.now() < deadline) {
      try {
        await fetch(`${base}/health`);
        return;
      } catch {
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    throw new Error(`deno did not start:\n${output}`);
  });

  afterAll(async () => {
    deno?.kill("SIGTERM");
    await s3?.stop();
  });

  const signup = async () => {
    const name = `deno_media_${randomBytes(6).toString("hex")}`;
    const res = await fetch(`${base}/v1/auth/signup`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        username: name,
        email: `${name}@example.test`,
        password: "correct horse battery",
        termsVersion: "1.0",
        privacyVersion: "1.0",
      }),
    });
    expect(res.status).toBe(201);
    return ((await res.json()) as { accessToken: string }).accessToken;
  };

  const upload = async (token: string, declared: string, bytes: Uint8Array) => {
    const started = await fetch(`${base}/v1/media`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify({ purpose: "post", contentType: declared, size: bytes.length }),
    });
    expect(started.status).toBe(201);
    const { id } = (await started.json()) as { id: string };
    return fetch(`${base}/v1/media/${id}`, {
      method: "PUT",
      headers: { "content-type": declared, authorization: `Bearer ${token}` },
      body: bytes as Uint8Array<ArrayBuffer>,
    });
  };

  it("checks the bytes, stores them in the bucket and serves them from the public base URL", async () => {
    const token = await signup();
    const put = await upload(token, "video/mp4", fixtures.mp4);
    expect(put.status).toBe(200);
    const media = (await put.json()) as { url: string; width: number; durationSeconds: number };
    expect(media).toMatchObject({ width: 32 });
    expect(media.durationSeconds).toBeCloseTo(2, 1);
    const key = media.url.slice(`${base}/media/`.length);
    expect(new Uint8Array(s3.objects.get(key)?.bytes ?? [])).toEqual(fixtures.mp4);
    const served = await fetch(media.url, { headers: { range: "bytes=0-11" } });
    expect(served.status).toBe(206);
    expect(new Uint8Array(await served.arrayBuffer())).toEqual(fixtures.mp4.subarray(0, 12));
  });

  it("refuses bytes of another type and sends nothing to the bucket", async () => {
    const token = await signup();
    const before = s3.objects.size;
    const put = await upload(token, "image/png", fixtures.jpeg);
    expect(put.status).toBe(415);
    expect(s3.objects.size).toBe(before);
  });
});
