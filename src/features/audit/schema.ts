import { z } from "zod";
import { ObjectIdString, PageQuery, pageOf } from "../../core/schemas";
import { AUDIT_ACTIONS } from "../../db";

export const AuditEntry = z
  .object({
    id: z.string(),
    action: z.string(),
    userId: z.string().nullable(),
    actorId: z.string().nullable(),
    timestamp: z.string(),
    requestId: z.string().nullable(),
    dataCategory: z.string(),
    metadata: z.record(z.string(), z.unknown()),
  })
  .meta({ id: "AuditEntry" });

export const AuditPage = pageOf(AuditEntry, "AuditPage");

export const AuditQuery = PageQuery.extend({
  action: z.enum(AUDIT_ACTIONS).optional(),
  actorId: ObjectIdString.optional(),
  userId: ObjectIdString.optional(),
  from: z.iso.datetime({ offset: true }).optional(),
  to: z.iso.datetime({ offset: true }).optional(),
});

export type AuditEntry = z.infer<typeof AuditEntry>;
export type AuditPage = z.infer<typeof AuditPage>;
export type AuditQuery = z.infer<typeof AuditQuery>;
