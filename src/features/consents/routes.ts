import { PageQuery } from "../../core/schemas";
import { requestMetaOf } from "../../http/context";
import { json, jsonBody, problems, router } from "../../http/openapi";
import { authedRoute, publicRoute } from "../../http/routes";
import { ConsentBody, ConsentOverview, ConsentRecord, LegalVersionsView } from "./schema";
import { listConsents, recordConsent } from "./service";

const tags = ["users"];

const listRoute = authedRoute({
  method: "get",
  path: "/v1/me/consents",
  tags,
  summary: "The caller's consents: current state, what must be accepted, and the history",
  description:
    "`current` holds the latest decision per kind; `required` lists the documents (terms, privacy) never accepted, " +
    "withdrawn, or accepted in a version that is no longer current; `items` is every decision, newest first.",
  request: { query: PageQuery },
  responses: { 200: json(ConsentOverview, "Consents"), ...problems(404) },
});

const recordRoute = authedRoute({
  method: "post",
  path: "/v1/me/consents",
  tags,
  summary: "Grant or withdraw a consent",
  description:
    "Recorded in a ledger (time, version, a keyed hash of the address and the user agent), never overwritten. " +
    "Granting `terms` or `privacy` accepts the current version (another `version` is a 400 naming it); any " +
    "consent can be withdrawn at any time. Marketing mail and pushes go only to accounts with current marketing " +
    "consent; granting or withdrawing it also sets the marketing notification preference.",
  request: jsonBody(ConsentBody),
  responses: { 201: json(ConsentRecord, "The decision as recorded") },
});

export const consentsRoutes = router()
  .openapi(listRoute, async (c) => c.json(await listConsents(c.var.deps, c.var.viewer, c.req.valid("query")), 200))
  .openapi(recordRoute, async (c) =>
    c.json(await recordConsent(c.var.deps, requestMetaOf(c), c.var.viewer, c.req.valid("json")), 201),
  );

const legalRoute = publicRoute({
  method: "get",
  path: "/v1/legal",
  tags,
  summary: "The current terms of service and privacy policy versions",
  description: "What `POST /v1/auth/signup` must accept (`termsVersion`, `privacyVersion`).",
  responses: { 200: json(LegalVersionsView, "Current versions") },
});

consentsRoutes.openapi(legalRoute, (c) => {
  const { termsVersion, privacyVersion } = c.var.deps.config.legal;
  return c.json({ termsVersion, privacyVersion }, 200);
});
