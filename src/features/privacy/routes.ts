import { requestMetaOf } from "../../http/context";
import { json, problems, router } from "../../http/openapi";
import { authedRoute } from "../../http/routes";
import { deleteAccount } from "./deletion";
import { exportAccount } from "./export";
import { DataExport, DeletionAccepted } from "./schema";

const tags = ["users"];

const deleteMeRoute = authedRoute({
  method: "delete",
  path: "/v1/me",
  tags,
  summary: "Delete the caller's account",
  description:
    "Soft delete: at once the account disappears, every session is revoked, and its posts and comments are " +
    "hidden from everyone (a comment others replied to stays as a placeholder without author or text; comment " +
    "and reply counts drop accordingly); cached feeds and the profile are dropped and the account leaves the " +
    "leaderboards. Personal data is erased by a job after ACCOUNT_DELETION_GRACE_DAYS. Ledger records stay, " +
    "anonymised.",
  responses: { 202: json(DeletionAccepted, "Deletion accepted"), ...problems(404) },
});

const exportRoute = authedRoute({
  method: "get",
  path: "/v1/me/export",
  tags,
  summary: "Everything stored about the caller, as JSON (GDPR)",
  description:
    "Streamed as a download (`Content-Disposition: attachment`), section by section, every record included. " +
    "The document ends with `itemCounts` and `complete: true`; one without them was cut off.",
  responses: { 200: json(DataExport, "Export"), ...problems(404) },
});

export const privacyRoutes = router()
  .openapi(deleteMeRoute, async (c) => c.json(await deleteAccount(c.var.deps, requestMetaOf(c), c.var.viewer), 202))
  .openapi(exportRoute, async (c) => {
    const stream = await exportAccount(c.var.deps, requestMetaOf(c), c.var.viewer);
    const headers = {
      "Content-Type": "application/json; charset=utf-8",
      "Content-Disposition": 'attachment; filename="circle-export.json"',
      "Cache-Control": "no-store",
    };
    // Streamed: the typed c.json would need the whole document in memory.
    return c.body(stream, 200, headers) as unknown as ReturnType<typeof c.json<DataExport, 200>>;
  });
