import { IdParam, PageQuery } from "../../core/schemas";
import { RELATION_KINDS, type RelationKind } from "../../db";
import { json, problems, router } from "../../http/openapi";
import { authedRoute } from "../../http/routes";
import { PublicUserPage } from "../users/schema";
import { listRelations, setRelation } from "./service";

const tags = ["safety"];

const WHAT: Record<RelationKind, string> = {
  block:
    "A block works both ways: neither sees the other's profile, posts or comments (404), neither can follow, " +
    "vote, comment, reply, gift or report the other, follows between them end (counters exact) and the " +
    "notifications between them go.",
  mute: "The muted person's posts and notifications leave the caller's feeds and inbox; they are not told.",
};

const VERB: Record<RelationKind, string> = { block: "Block", mute: "Mute" };
const DONE: Record<RelationKind, string> = { block: "blocked", mute: "muted" };

const setRoute = (kind: RelationKind, on: boolean) =>
  authedRoute({
    method: on ? "put" : "delete",
    path: `/v1/users/{id}/${kind}`,
    tags,
    summary: `${on ? VERB[kind] : `Un${kind}`} a user (idempotent)`,
    description: on
      ? `${WHAT[kind]} Yourself → 400; more than RELATIONS_MAX_PER_USER blocks and mutes → 409 \`relation_limit\`.`
      : `Undoes the ${kind}; follows ended by a block do not come back.`,
    request: { params: IdParam },
    responses: { 204: { description: `${on ? "" : "Not "}${DONE[kind]}` }, ...(on ? problems(404, 409) : {}) },
  });

const listRoute = (kind: RelationKind) =>
  authedRoute({
    method: "get",
    path: `/v1/me/${kind}s`,
    tags,
    summary: kind === "block" ? "People the caller blocks" : "People the caller mutes",
    description: "Most recent first. `nextCursor` is null on the last page.",
    request: { query: PageQuery },
    responses: { 200: json(PublicUserPage, "A page of users") },
  });

export const blocksRoutes = router();
for (const kind of RELATION_KINDS) {
  blocksRoutes
    .openapi(setRoute(kind, true), async (c) => {
      await setRelation(c.var.deps, c.var.viewer, c.req.valid("param").id, kind, true);
      return c.body(null, 204);
    })
    .openapi(setRoute(kind, false), async (c) => {
      await setRelation(c.var.deps, c.var.viewer, c.req.valid("param").id, kind, false);
      return c.body(null, 204);
    })
    .openapi(listRoute(kind), async (c) =>
      c.json(await listRelations(c.var.deps, c.var.viewer, kind, c.req.valid("query")), 200),
    );
}
