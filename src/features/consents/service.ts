import { ApiError } from "../../core/errors";
import { forgetSelfView } from "../../core/standing";
import type { RequestMeta, Viewer } from "../../core/viewer";
import { CONSENT_KINDS, type ConsentDoc, type ConsentKind, type ConsentState, type UserDoc } from "../../db";
import type { Deps } from "../../deps";
import { newObjectId, ObjectId } from "../../platform/ids";
import { paginate } from "../../platform/mongo/paginate";
import { ipHash } from "../audit/service";
import {
  type ConsentBody,
  type ConsentOverview,
  type ConsentRecord,
  currentVersionOf,
  requiredConsents,
  toConsentRecord,
  toCurrentConsent,
  VERSIONED_KINDS,
  type VersionedKind,
} from "./schema";

/** One decision to record: what, granted or withdrawn, in which version. */
export interface ConsentDecision {
  kind: ConsentKind;
  granted: boolean;
  version: string | null;
}

const isVersioned = (kind: ConsentKind): kind is VersionedKind => (VERSIONED_KINDS as readonly string[]).includes(kind);

/** Ledger records for decisions made in one request (with where it came from: IP hash and user agent). */
export async function consentRecords(
  deps: Deps,
  meta: RequestMeta,
  userId: ObjectId,
  decisions: ConsentDecision[],
  source: ConsentDoc["source"],
): Promise<ConsentDoc[]> {
  const hashed = await ipHash(deps, meta.ip);
  const now = deps.clock.now();
  return decisions.map((d) => ({
    _id: newObjectId(),
    userId,
    kind: d.kind,
    granted: d.granted,
    version: d.version,
    source,
    ipHash: hashed,
    userAgent: meta.userAgent?.slice(0, 512) ?? null,
    createdAt: now,
  }));
}

/** The summary a user document carries for these decisions (the latest per kind). */
export function consentStates(records: ConsentDoc[]): Partial<Record<ConsentKind, ConsentState>> {
  return Object.fromEntries(
    records.map((r) => [r.kind, { granted: r.granted, version: r.version, at: r.createdAt }] as const),
  );
}

/**
 * Records a decision (GDPR Art. 7): the ledger first — the record that shows consent was given or withdrawn —
 * then the user's summary, which only a later decision may overwrite (two decisions racing keep the newer).
 * Granting terms or privacy accepts the current version only; withdrawing is always possible. Marketing consent
 * also turns the marketing notification preference on or off with it.
 */
export async function recordConsent(
  deps: Deps,
  meta: RequestMeta,
  viewer: Viewer,
  body: ConsentBody,
): Promise<ConsentRecord> {
  let version = body.version ?? null;
  if (isVersioned(body.kind)) {
    const current = currentVersionOf(body.kind, deps.config.legal);
    if (body.granted && version !== null && version !== current) {
      throw ApiError.invalidField("version", `the current ${body.kind} version is ${current}`);
    }
    version ??= current;
  }
  // The account exists and is not deleted: the standing checked that for this token.
  const userId = new ObjectId(viewer.id);
  const [record] = await consentRecords(
    deps,
    meta,
    userId,
    [{ kind: body.kind, granted: body.granted, version }],
    "api",
  );
  if (!record) throw new Error("no consent record built");
  await deps.db.consents.insertOne(record);
  const at = record.createdAt;
  const path = `consents.${body.kind}`;
  await deps.db.users.updateOne(
    { _id: userId, $or: [{ [path]: null }, { [`${path}.at`]: { $lte: at } }] },
    {
      $set: {
        [path]: { granted: body.granted, version, at },
        ...(body.kind === "marketing" ? { "notificationPreferences.marketing": body.granted } : {}),
      },
    },
  );
  // `GET /v1/me` shows what must still be accepted (and the marketing preference).
  await forgetSelfView(deps, viewer.id);
  return toConsentRecord(record);
}

/** The caller's consents: the current decision per kind, what must be (re-)accepted, and the history. */
export async function listConsents(
  deps: Deps,
  viewer: Viewer,
  page: { limit: number; cursor?: string | undefined },
): Promise<ConsentOverview> {
  const userId = new ObjectId(viewer.id);
  const [user, history] = await Promise.all([
    deps.db.users.findOne({ _id: userId, deletedAt: null }, { projection: { consents: 1 } }),
    paginate(deps.db.consents, {
      filter: { userId },
      order: { field: "createdAt", kind: "date", direction: "desc" },
      limit: page.limit,
      cursor: page.cursor,
    }),
  ]);
  if (!user) throw ApiError.notFound("Account not found.");
  const legal = deps.config.legal;
  const current = Object.fromEntries(
    CONSENT_KINDS.map((k) => [k, toCurrentConsent(user.consents?.[k])]),
  ) as ConsentOverview["current"];
  return {
    items: history.items.map(toConsentRecord),
    nextCursor: history.nextCursor,
    current,
    versions: { terms: legal.termsVersion, privacy: legal.privacyVersion },
    required: requiredConsents(user, legal),
  };
}

/**
 * Who of `userIds` may receive marketing on `channel` now: current marketing consent (granted, not withdrawn
 * since), the marketing preference on, and the channel not switched off. Every marketing mail or push asks this
 * first; one read, however many users.
 */
export async function marketingAllowed(
  deps: Deps,
  userIds: (ObjectId | string)[],
  channel: "email" | "push",
): Promise<Set<string>> {
  if (userIds.length === 0) return new Set();
  const ids = userIds.map((id) => (typeof id === "string" ? new ObjectId(id) : id));
  const users = (await deps.db.users.find(
    {
      _id: { $in: ids },
      deletedAt: null,
      "consents.marketing.granted": true,
      "notificationPreferences.marketing": true,
      [`notificationPreferences.${channel}`]: { $ne: false },
    },
    { projection: { _id: 1 }, limit: ids.length },
  )) as Pick<UserDoc, "_id">[];
  return new Set(users.map((u) => u._id.toHexString()));
}
