import { createHash } from "node:crypto";
import { AwsClient } from "aws4fetch";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningS3Server, sigV4Signature, startS3Server } from "../../scripts/local/s3-server";
import { StoreUnavailableError } from "../../src/platform/errors";
import { s3Store } from "../../src/platform/objects-s3";

const credentials = { accessKeyId: "circle-test-key", secretAccessKey: "circle-test-secret-0123456789abcdef" };

describe("R2 S3-API stand-in and the S3 media store", () => {
  let s3: RunningS3Server;
  const store = () => s3Store({ endpoint: s3.url, bucket: "media", region: "auto", timeoutMs: 5_000, ...credentials });
  const signed = (secretAccessKey = credentials.secretAccessKey) =>
    new AwsClient({ accessKeyId: credentials.accessKeyId, secretAccessKey, service: "s3", region: "auto" });

  beforeAll(async () => {
    s3 = await startS3Server({ port: 0, bucket: "media", ...credentials });
  });
  afterAll(async () => {
    await s3?.stop();
  });

  it("computes AWS's published SigV4 example (GET /test.txt with a Range)", () => {
    // docs.aws.amazon.com AmazonS3 sig-v4-header-based-auth, "Example: GET Object".
    const signature = sigV4Signature("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", {
      method: "GET",
      path: "/test.txt",
      query: [],
      headers: {
        host: "examplebucket.s3.amazonaws.com",
        range: "bytes=0-9",
        "x-amz-content-sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "x-amz-date": "20130524T000000Z",
      },
      signedHeaders: ["host", "range", "x-amz-content-sha256", "x-amz-date"],
      payloadHash: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
      amzDate: "20130524T000000Z",
      scope: { date: "20130524", region: "us-east-1", service: "s3" },
    });
    expect(signature).toBe("f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  });

  it("refuses unsigned, wrongly signed and tampered requests as S3 does", async () => {
    const url = `${s3.url}/media/refused/1.png`;
    const unsigned = await fetch(url, { method: "PUT", body: "x" });
    expect(unsigned.status).toBe(403);
    expect(await unsigned.text()).toContain("<Code>AccessDenied</Code>");
    const wrongKey = await signed("not-the-secret").fetch(url, { method: "PUT", body: "x" });
    expect(wrongKey.status).toBe(403);
    expect(await wrongKey.text()).toContain("<Code>SignatureDoesNotMatch</Code>");
    const hash = createHash("sha256").update("the signed body").digest("hex");
    const request = await signed().sign(url, {
      method: "PUT",
      body: "the signed body",
      headers: { "x-amz-content-sha256": hash },
    });
    const tampered = await fetch(request.url, { method: "PUT", headers: request.headers, body: "another body" });
    expect(tampered.status).toBe(400);
    expect(await tampered.text()).toContain("XAmzContentSHA256Mismatch");
    expect(s3.objects.size).toBe(0);
  });

  it("stores, serves (ranges too), lists by prefix and deletes through the media store", async () => {
    const objects = store();
    const bytes = new TextEncoder().encode("0123456789abcdef");
    await objects.put("owner/one-a.png", new Response(bytes).body as ReadableStream<Uint8Array>, {
      length: bytes.length,
      contentType: "image/png",
    });
    await objects.put("owner/two-b.png", new Response(bytes).body as ReadableStream<Uint8Array>, {
      length: bytes.length,
      contentType: "image/png",
    });
    await objects.put("other/three-c.png", new Response(bytes).body as ReadableStream<Uint8Array>, {
      length: bytes.length,
      contentType: "image/png",
    });
    expect(s3.objects.get("owner/one-a.png")).toMatchObject({ contentType: "image/png", payloadSigned: true });
    expect(await objects.head("owner/one-a.png")).toEqual({ size: 16, contentType: "image/png" });
    const part = await objects.get("owner/one-a.png", { offset: 4, length: 3 });
    expect(part?.range).toEqual({ offset: 4, length: 3 });
    expect(part?.size).toBe(16);
    expect(await new Response(part?.body).text()).toBe("456");
    expect((await objects.list("owner/")).keys).toEqual(["owner/one-a.png", "owner/two-b.png"]);
    await objects.delete(["owner/one-a.png", "owner/two-b.png", "owner/missing.png"]);
    expect((await objects.list("owner/")).keys).toEqual([]);
    expect(await objects.get("owner/one-a.png")).toBeNull();
    expect([...s3.objects.keys()]).toEqual(["other/three-c.png"]);
  });

  it("stores nothing when the body fails midway (a refused upload), and reports a wrong secret as an outage", async () => {
    const objects = store();
    const refusal = new Error("the bytes are image/jpeg, not the declared image/png");
    const failing = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new Uint8Array(8));
        controller.error(refusal);
      },
    });
    await expect(objects.put("owner/refused.png", failing, { length: 16, contentType: "image/png" })).rejects.toBe(
      refusal,
    );
    expect(s3.objects.has("owner/refused.png")).toBe(false);
    const wrong = s3Store({
      endpoint: s3.url,
      bucket: "media",
      region: "auto",
      timeoutMs: 5_000,
      ...credentials,
      secretAccessKey: "wrong",
    });
    await expect(wrong.head("other/three-c.png")).rejects.toBeInstanceOf(StoreUnavailableError);
  });
});
