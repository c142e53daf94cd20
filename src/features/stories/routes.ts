import { afterResponse } from "../../http/context";
import { json, jsonBody, problems, router } from "../../http/openapi";
import { authedRoute, viewerRoute } from "../../http/routes";
import { Message } from "../messaging/schema";
import {
  CreateStoryBody,
  Story,
  StoryIdParam,
  StoryList,
  StoryReplyBody,
  StoryTray,
  StoryViewers,
  UserIdParam,
  ViewersQuery,
} from "./schema";
import { createStory, deleteStory, replyToStory, storyTray, storyViewers, userStories, viewStory } from "./service";

const tags = ["stories"];

const createRoute = authedRoute({
  method: "post",
  path: "/v1/stories",
  tags,
  summary: "Post a story (an image for STORY_TTL_HOURS)",
  description:
    "From one of the caller's completed generations (`generationId`) or ready `story` image uploads " +
    "(`mediaId`, POST /v1/media; anything else of yours or anyone else's upload is a 400 naming it). More than " +
    "STORY_MAX_ACTIVE_PER_USER live stories → 409 `story_limit`.",
  request: { ...jsonBody(CreateStoryBody) },
  responses: { 201: json(Story, "Posted"), ...problems(404, 409) },
});

const trayRoute = authedRoute({
  method: "get",
  path: "/v1/stories/tray",
  tags,
  summary: "Stories of the people the caller follows, unseen first",
  description: "The caller's own live stories lead. Blocked and muted people are left out.",
  responses: { 200: json(StoryTray, "The tray") },
});

const userStoriesRoute = viewerRoute({
  method: "get",
  path: "/v1/users/{id}/stories",
  tags,
  summary: "A user's live stories, oldest first",
  description: "404 for people blocked with the caller (either way). `seen` per story for a signed-in caller.",
  request: { params: UserIdParam },
  responses: { 200: json(StoryList, "Live stories"), ...problems(404) },
});

const viewRoute = authedRoute({
  method: "post",
  path: "/v1/stories/{id}/view",
  tags,
  summary: "Record that the caller viewed a story (once per viewer)",
  description: "Repeats, also concurrent ones, count once; the owner's own views are not recorded.",
  request: { params: StoryIdParam },
  responses: { 204: { description: "Recorded" }, ...problems(404) },
});

const viewersRoute = authedRoute({
  method: "get",
  path: "/v1/stories/{id}/viewers",
  tags,
  summary: "Who viewed the caller's story, most recent first (owner only)",
  request: { params: StoryIdParam, query: ViewersQuery },
  responses: { 200: json(StoryViewers, "Viewers"), ...problems(404) },
});

const deleteRoute = authedRoute({
  method: "delete",
  path: "/v1/stories/{id}",
  tags,
  summary: "Delete the caller's story",
  request: { params: StoryIdParam },
  responses: { 204: { description: "Deleted" }, ...problems(404) },
});

const replyRoute = authedRoute({
  method: "post",
  path: "/v1/stories/{id}/reply",
  tags,
  summary: "Reply to a story: a direct message to its author",
  description:
    "Sent in the direct conversation with the author (started if needed; a message request when the author " +
    "does not follow the caller), with `storyId` set. Your own story → 400.",
  request: { params: StoryIdParam, ...jsonBody(StoryReplyBody) },
  responses: {
    201: json(Message, "Sent"),
    200: json(Message, "Already sent with this clientMessageId"),
    ...problems(404, 409, 422),
  },
});

export const storiesRoutes = router()
  .openapi(createRoute, async (c) => c.json(await createStory(c.var.deps, c.var.viewer, c.req.valid("json")), 201))
  .openapi(trayRoute, async (c) => c.json(await storyTray(c.var.deps, c.var.viewer), 200))
  .openapi(userStoriesRoute, async (c) =>
    c.json(await userStories(c.var.deps, c.var.viewer, c.req.valid("param").id), 200),
  )
  .openapi(viewRoute, async (c) => {
    await viewStory(c.var.deps, c.var.viewer, c.req.valid("param").id);
    return c.body(null, 204);
  })
  .openapi(viewersRoute, async (c) =>
    c.json(await storyViewers(c.var.deps, c.var.viewer, c.req.valid("param").id, c.req.valid("query")), 200),
  )
  .openapi(deleteRoute, async (c) => {
    await deleteStory(c.var.deps, c.var.viewer, c.req.valid("param").id);
    return c.body(null, 204);
  })
  .openapi(replyRoute, async (c) => {
    const { message, created } = await replyToStory(
      c.var.deps,
      c.var.viewer,
      c.req.valid("param").id,
      c.req.valid("json"),
      afterResponse(),
    );
    return created ? c.json(message, 201) : c.json(message, 200);
  });
