import { requestMetaOf } from "../../http/context";
import { json, problems, router } from "../../http/openapi";
import { authedRoute } from "../../http/routes";
import { DataExport, DeletionAccepted } from "./schema";
import { deleteMe, exportMe } from "./service";

const tags = ["users"];

const deleteMeRoute = authedRoute({
  method: "delete",
  path: "/v1/me",
  tags,
  summary: "Delete the caller's account",
  description:
    "Soft delete: the account disappears and every session is revoked now; personal data is erased by a job " +
    "after ACCOUNT_DELETION_GRACE_DAYS. Ledger records stay, anonymised.",
  responses: { 202: json(DeletionAccepted, "Deletion accepted"), ...problems(404) },
});

const exportRoute = authedRoute({
  method: "get",
  path: "/v1/me/export",
  tags,
  summary: "Everything stored about the caller, as JSON (GDPR)",
  responses: { 200: json(DataExport, "Export"), ...problems(404) },
});

export const privacyRoutes = router()
  .openapi(deleteMeRoute, async (c) => c.json(await deleteMe(c.var.deps, requestMetaOf(c), c.var.viewer), 202))
  .openapi(exportRoute, async (c) => {
    c.header("Content-Disposition", 'attachment; filename="circle-export.json"');
    return c.json(await exportMe(c.var.deps, requestMetaOf(c), c.var.viewer), 200);
  });
