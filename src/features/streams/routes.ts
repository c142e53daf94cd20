import { IdempotencyHeaders, OptionalIdempotencyHeaders } from "../../core/idempotency";
import { afterResponse } from "../../http/context";
import { idempotencyKeyOf, idempotent } from "../../http/idempotency";
import { json, jsonBody, problems, router } from "../../http/openapi";
import { authedRoute, viewerRoute } from "../../http/routes";
import { getStream, liveStreams, userStreams } from "./discovery";
import { sendStreamGift, streamGifters } from "./gifts";
import { cancelStream, createStream, endOwnStream, startStream } from "./lifecycle";
import {
  CreateStreamBody,
  GiftersQuery,
  LiveStreamsQuery,
  Stream,
  StreamGiftBody,
  StreamGifters,
  StreamGiftResult,
  StreamIdParam,
  StreamPage,
  StreamUserParams,
  UserIdParam,
  UserStreamsQuery,
} from "./schema";
import { acceptCohost, appointModerator, dismissModerator, inviteCohost, removeCohost, setChatMute } from "./staff";
import { heartbeat } from "./viewers";

const tags = ["streams"];

const createRoute = authedRoute({
  method: "post",
  path: "/v1/streams",
  tags,
  summary: "Create a live stream: scheduled for later, or live now",
  description:
    "Creates the stream's live input at the video provider: the answer carries `ingest` (RTMPS URL and stream key, " +
    "for the streamer only) and the `playbackUrl` viewers get. Without `scheduledFor` the stream is live at once " +
    "and the streamer's followers are told. Its chat is the conversation `conversationId`. 503 when the provider " +
    "cannot be reached (nothing is created). With an `Idempotency-Key`, a retry gets the stream the first attempt " +
    "made instead of a second one (another body under the key: 422).",
  use: [idempotent("stream", { required: false })],
  request: { headers: OptionalIdempotencyHeaders, ...jsonBody(CreateStreamBody) },
  responses: { 201: json(Stream, "Created"), ...problems(404, 409, 422) },
});

const liveRoute = viewerRoute({
  method: "get",
  path: "/v1/streams/live",
  tags,
  cacheFirst: true,
  summary: "Live streams, most current viewers first, then the most recently started",
  description:
    "Streams of banned and shadow-banned streamers are never listed; blocked and muted streamers are left out for " +
    "the caller. `viewerCount` counts distinct viewers with a heartbeat younger than STREAM_VIEWER_LIFETIME_SECONDS " +
    "(as ranked at most STREAM_LIVE_CACHE_TTL_SECONDS ago).",
  request: { query: LiveStreamsQuery },
  responses: { 200: json(StreamPage, "A page of live streams") },
});

const getRoute = viewerRoute({
  method: "get",
  path: "/v1/streams/{id}",
  tags,
  summary: "One stream (the streamer also gets `ingest` until it is over)",
  request: { params: StreamIdParam },
  responses: { 200: json(Stream, "The stream"), ...problems(404) },
});

const userStreamsRoute = viewerRoute({
  method: "get",
  path: "/v1/users/{id}/streams",
  tags,
  summary: "A person's streams, newest first",
  description: "Cancelled streams show to their streamer only.",
  request: { params: UserIdParam, query: UserStreamsQuery },
  responses: { 200: json(StreamPage, "A page of streams"), ...problems(404) },
});

const stateRoute = (action: "start" | "end" | "cancel", summary: string, description: string) =>
  authedRoute({
    method: "post",
    path: `/v1/streams/{id}/${action}`,
    tags,
    summary,
    description: `${description} Only the streamer (others: 403). Repeating it answers the stream as it is.`,
    request: { params: StreamIdParam },
    responses: { 200: json(Stream, "The stream now"), ...problems(403, 404, 409) },
  });

const startRoute = stateRoute(
  "start",
  "Go live with a scheduled stream",
  "scheduled → live; followers are told once. Over already: 409 `stream_over`.",
);
const endRoute = stateRoute(
  "end",
  "End a live stream",
  "live → ended: viewer numbers are frozen, the chat turns read-only, the live input is deleted. Not started: " +
    "409 `stream_not_live` (cancel it).",
);
const cancelRoute = stateRoute(
  "cancel",
  "Cancel a scheduled stream",
  "scheduled → cancelled. Live: 409 `stream_live` (end it).",
);

const heartbeatRoute = authedRoute({
  method: "post",
  path: "/v1/streams/{id}/heartbeat",
  tags,
  summary: "I am watching (every 15 s)",
  description:
    "A viewer counts while their last heartbeat is younger than STREAM_VIEWER_LIFETIME_SECONDS, once however many " +
    "devices they watch on. The streamer's and co-hosts' beats keep the stream from being ended as abandoned. Not " +
    "live: 409 `stream_not_live`.",
  request: { params: StreamIdParam },
  responses: { 204: { description: "Counted" }, ...problems(404, 409) },
});

const giftRoute = authedRoute({
  method: "post",
  path: "/v1/streams/{id}/gifts",
  tags,
  use: [idempotent("stream_gift")],
  summary: "Send the streamer gems during their live stream",
  description:
    "The same transfer as `POST /v1/users/{id}/gifts`: the sender pays `amount`, the streamer gets amount − " +
    "platformFee. Recorded on the stream (`giftTotal`, top gifters) and announced in its chat. Requires " +
    "`Idempotency-Key` (a repeat replays the first answer). Your own stream: 400 naming `id`; not live: 409 " +
    "`stream_not_live`; too few gems: 402.",
  request: { params: StreamIdParam, headers: IdempotencyHeaders, ...jsonBody(StreamGiftBody) },
  responses: { 201: json(StreamGiftResult, "Sent"), ...problems(402, 404, 409, 422) },
});

const giftersRoute = viewerRoute({
  method: "get",
  path: "/v1/streams/{id}/gifters",
  tags,
  summary: "The stream's top gifters",
  request: { params: StreamIdParam, query: GiftersQuery },
  responses: { 200: json(StreamGifters, "Top gifters"), ...problems(404) },
});

const inviteRoute = authedRoute({
  method: "put",
  path: "/v1/streams/{id}/cohosts/{userId}",
  tags,
  summary: "Invite a co-host (the streamer; idempotent)",
  description: "At most STREAM_MAX_COHOSTS (409 `cohost_limit`). The invitee is notified and accepts.",
  request: { params: StreamUserParams },
  responses: { 200: json(Stream, "Invited"), ...problems(403, 404, 409) },
});

const acceptRoute = authedRoute({
  method: "post",
  path: "/v1/streams/{id}/cohosts/accept",
  tags,
  summary: "Accept an invitation to co-host",
  description: "A co-host moderates the stream's chat with the streamer. No invitation: 404.",
  request: { params: StreamIdParam },
  responses: { 200: json(Stream, "Co-hosting"), ...problems(404, 409) },
});

const removeCohostRoute = authedRoute({
  method: "delete",
  path: "/v1/streams/{id}/cohosts/{userId}",
  tags,
  summary: "Remove a co-host, withdraw or decline an invitation, or leave",
  request: { params: StreamUserParams },
  responses: { 204: { description: "Gone" }, ...problems(403, 404, 409) },
});

const appointRoute = authedRoute({
  method: "put",
  path: "/v1/streams/{id}/moderators/{userId}",
  tags,
  summary: "Appoint a chat moderator (the streamer; idempotent)",
  description:
    "Moderators remove chat messages (DELETE /v1/messages/{id}) and mute viewers. At most STREAM_MAX_MODERATORS.",
  request: { params: StreamUserParams },
  responses: { 204: { description: "Appointed" }, ...problems(403, 404, 409) },
});

const dismissRoute = authedRoute({
  method: "delete",
  path: "/v1/streams/{id}/moderators/{userId}",
  tags,
  summary: "Dismiss a chat moderator (the streamer; idempotent)",
  request: { params: StreamUserParams },
  responses: { 204: { description: "Dismissed" }, ...problems(403, 404, 409) },
});

const muteRoute = authedRoute({
  method: "put",
  path: "/v1/streams/{id}/chat-mutes/{userId}",
  tags,
  summary: "Mute a viewer in the stream's chat (streamer, co-hosts, moderators; idempotent)",
  description: "They keep watching and reading; their messages are refused (403) for this stream.",
  request: { params: StreamUserParams },
  responses: { 204: { description: "Muted" }, ...problems(403, 404, 409) },
});

const unmuteRoute = authedRoute({
  method: "delete",
  path: "/v1/streams/{id}/chat-mutes/{userId}",
  tags,
  summary: "Lift a viewer's mute in the stream's chat",
  request: { params: StreamUserParams },
  responses: { 204: { description: "Unmuted" }, ...problems(403, 404, 409) },
});

export const streamsRoutes = router()
  .openapi(createRoute, async (c) =>
    c.json(await createStream(c.var.deps, c.var.viewer, c.req.valid("json"), afterResponse(), c.var.idempotency), 201),
  )
  .openapi(liveRoute, async (c) =>
    c.json(await liveStreams(c.var.deps, c.var.redis, c.var.viewer, c.req.valid("query")), 200),
  )
  .openapi(getRoute, async (c) => c.json(await getStream(c.var.deps, c.var.viewer, c.req.valid("param").id), 200))
  .openapi(userStreamsRoute, async (c) =>
    c.json(await userStreams(c.var.deps, c.var.viewer, c.req.valid("param").id, c.req.valid("query")), 200),
  )
  .openapi(startRoute, async (c) =>
    c.json(await startStream(c.var.deps, c.var.viewer, c.req.valid("param").id, afterResponse()), 200),
  )
  .openapi(endRoute, async (c) =>
    c.json(await endOwnStream(c.var.deps, c.var.viewer, c.req.valid("param").id, afterResponse()), 200),
  )
  .openapi(cancelRoute, async (c) =>
    c.json(await cancelStream(c.var.deps, c.var.viewer, c.req.valid("param").id, afterResponse()), 200),
  )
  .openapi(heartbeatRoute, async (c) => {
    await heartbeat(c.var.deps, c.var.viewer, c.req.valid("param").id);
    return c.body(null, 204);
  })
  .openapi(giftRoute, async (c) => {
    const { id } = c.req.valid("param");
    const result = await sendStreamGift(
      c.var.deps,
      c.var.viewer,
      id,
      c.req.valid("json"),
      idempotencyKeyOf(c),
      afterResponse(),
    );
    return c.json(result, 201);
  })
  .openapi(giftersRoute, async (c) =>
    c.json(await streamGifters(c.var.deps, c.var.viewer, c.req.valid("param").id, c.req.valid("query").limit), 200),
  )
  .openapi(acceptRoute, async (c) => c.json(await acceptCohost(c.var.deps, c.var.viewer, c.req.valid("param").id), 200))
  .openapi(inviteRoute, async (c) => {
    const { id, userId } = c.req.valid("param");
    return c.json(await inviteCohost(c.var.deps, c.var.viewer, id, userId, afterResponse()), 200);
  })
  .openapi(removeCohostRoute, async (c) => {
    const { id, userId } = c.req.valid("param");
    await removeCohost(c.var.deps, c.var.viewer, id, userId);
    return c.body(null, 204);
  })
  .openapi(appointRoute, async (c) => {
    const { id, userId } = c.req.valid("param");
    await appointModerator(c.var.deps, c.var.viewer, id, userId);
    return c.body(null, 204);
  })
  .openapi(dismissRoute, async (c) => {
    const { id, userId } = c.req.valid("param");
    await dismissModerator(c.var.deps, c.var.viewer, id, userId);
    return c.body(null, 204);
  })
  .openapi(muteRoute, async (c) => {
    const { id, userId } = c.req.valid("param");
    await setChatMute(c.var.deps, c.var.viewer, id, userId, true, afterResponse());
    return c.body(null, 204);
  })
  .openapi(unmuteRoute, async (c) => {
    const { id, userId } = c.req.valid("param");
    await setChatMute(c.var.deps, c.var.viewer, id, userId, false, afterResponse());
    return c.body(null, 204);
  });
