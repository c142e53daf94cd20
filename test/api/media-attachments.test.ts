import { describe, expect, it } from "vitest";
import { call } from "../support/api";
import { uploaded } from "../support/media";
import { clientId, conversation } from "../support/messaging";
import { fieldPaths } from "../support/problems";
import { crowd } from "../support/users";

describe("uploads in stories and messages", () => {
  it("posts a story from a story upload, and only from one of the caller's", async () => {
    const [author, other] = await crowd(2);
    const image = await uploaded(author, "story", "webpAlpha");
    const res = await call<{ mediaUrl: string; media: { width: number; height: number } }>("POST", "/v1/stories", {
      token: author.accessToken,
      body: { mediaId: image.id, caption: "now" },
    });
    expect(res.status, res.text).toBe(201);
    expect(res.body).toMatchObject({ mediaUrl: image.url, media: { width: 20, height: 10 } });
    const postImage = await uploaded(author, "post", "png");
    const theirs = await uploaded(other, "story", "png");
    for (const mediaId of [postImage.id, theirs.id]) {
      const refused = await call("POST", "/v1/stories", { token: author.accessToken, body: { mediaId } });
      expect(fieldPaths(refused)).toEqual(["mediaId"]);
    }
  });

  it("sends an image message from a message upload, and only from one of the sender's", async () => {
    const [sender, recipient] = await crowd(2);
    const conv = await conversation(sender, [recipient]);
    const image = await uploaded(sender, "message", "jpeg");
    const send = (who: typeof sender, mediaId: string) =>
      call<{ kind: string; mediaUrl: string }>("POST", `/v1/conversations/${conv.id}/messages`, {
        token: who.accessToken,
        body: { clientMessageId: clientId(), kind: "image", mediaId },
      });
    const sent = await send(sender, image.id);
    expect(sent.status, sent.text).toBe(201);
    expect(sent.body).toMatchObject({ kind: "image", mediaUrl: image.url });
    // The recipient cannot send the sender's upload as their own.
    expect(fieldPaths(await send(recipient, image.id))).toEqual(["mediaId"]);
    const avatar = await uploaded(sender, "avatar", "png");
    expect(fieldPaths(await send(sender, avatar.id))).toEqual(["mediaId"]);
  });
});
