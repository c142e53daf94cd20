import { ApiError } from "../../core/errors";
import type { Viewer } from "../../core/viewer";
import type { JournalAttachment, JournalEntryDoc } from "../../db";
import type { Deps } from "../../deps";
import { newObjectId, ObjectId } from "../../platform/ids";
import type { Filter } from "../../platform/mongo/client";
import { addDays, localDay } from "../../platform/time";
import { ownGeneratedImages } from "../generations/images";
import { journalChanged } from "./cache";
import { decodeDateCursor, encodeDateCursor } from "./cursors";
import {
  type CreateEntryBody,
  type EntriesQuery,
  type Entry,
  type EntryPage,
  toEntry,
  type UpdateEntryBody,
} from "./schema";
import { readingTimeSeconds, wordCount } from "./text";

/**
 * Journal entries: private to their author (anyone else, whatever they try, gets the 404 a missing entry gets),
 * one live entry per calendar date (a unique index decides, so two racing creates give one entry and one 409),
 * and every change made against a version (`If-Match`): a change to a version that is no longer current
 * changes nothing and is a 412 carrying the current one, so of two edits from the same version exactly one wins.
 */

/** An entry with its HTTP validator: the version as a strong ETag. */
export interface Versioned {
  entry: Entry;
  etag: string;
}

export const etagOf = (version: number) => `"${version}"`;
const versioned = (doc: JournalEntryDoc): Versioned => ({ entry: toEntry(doc), etag: etagOf(doc.version) });

/** The zone of a signed-in caller (the standing carries it on every authenticated request). */
export const zoneOf = (viewer: Viewer) => viewer.timezone ?? "UTC";

/**
 * The versions an `If-Match` header names: `"3"` (or a bare 3; several separated by commas). Missing, or `*`
 * (which would overwrite whatever is there), is a 428: a journal edit must say which version it was made on.
 * Weak validators never match (RFC 9110 compares If-Match strongly).
 */
export function versionsOf(ifMatch: string | undefined): number[] {
  const header = ifMatch?.trim() ?? "";
  if (header === "" || header === "*") {
    throw new ApiError("precondition_required", "Send If-Match with the entry's ETag (its version).", {
      errors: [{ path: "If-Match", message: "required: the entry's ETag" }],
    });
  }
  const versions: number[] = [];
  for (const part of header.split(",")) {
    const tag = part.trim();
    if (tag.startsWith("W/")) continue;
    const value = tag.replace(/^"(.*)"$/, "$1");
    if (/^[1-9]\d{0,9}$/.test(value)) versions.push(Number(value));
  }
  return versions;
}

function stale(current: JournalEntryDoc): ApiError {
  return new ApiError("precondition_failed", `The entry has changed: its current version is ${current.version}.`, {
    headers: { ETag: etagOf(current.version) },
    members: { currentVersion: current.version },
  });
}

const notFound = () => ApiError.notFound("No such journal entry.");
const monthOf = (date: string) => date.slice(0, 7);

/**
 * Snapshots of the caller's own completed generations, in the order asked (one read). Anything else — someone
 * else's, unfinished, failed, unknown — is a 400 naming the id's position, the same for all of them.
 */
async function attachmentsFor(deps: Deps, viewer: Viewer, ids: string[]): Promise<JournalAttachment[]> {
  const max = deps.config.journal.maxAttachments;
  if (ids.length > max) throw ApiError.invalidField("attachmentIds", `at most ${max} attachments`);
  const images = await ownGeneratedImages(deps, viewer.id, ids);
  return ids.map((id, i) => {
    const image = images.get(id);
    if (!image) throw ApiError.invalidField(`attachmentIds.${i}`, "not one of your completed generations");
    const { generationId, ...shown } = image;
    return { source: "generation", sourceId: generationId, ...shown };
  });
}

function checkTags(deps: Deps, tags: string[] | undefined): void {
  const max = deps.config.journal.maxTags;
  if (tags && tags.length > max) throw ApiError.invalidField("tags", `at most ${max} tags`);
}

function textFields(deps: Deps, content: string) {
  const words = wordCount(content);
  return { wordCount: words, readingTimeSeconds: readingTimeSeconds(words, deps.config.journal.readingWordsPerMinute) };
}

/**
 * POST /v1/journal/entries. One MongoDB write (plus one read when it has attachments); the date must be today or
 * earlier in the entry's zone (the caller's, unless the app says where it is being written).
 */
export async function createEntry(deps: Deps, viewer: Viewer, body: CreateEntryBody): Promise<Versioned> {
  const zone = body.timezone ?? zoneOf(viewer);
  const now = deps.clock.now();
  const today = localDay(now, zone);
  if (body.date > today) throw ApiError.invalidField("date", `must not be after today (${today} in ${zone})`);
  checkTags(deps, body.tags);
  const attachments = await attachmentsFor(deps, viewer, body.attachmentIds ?? []);
  const doc: JournalEntryDoc = {
    _id: newObjectId(),
    userId: new ObjectId(viewer.id),
    date: body.date,
    timezone: zone,
    title: body.title,
    content: body.content,
    mood: body.mood ?? null,
    location: body.location ?? null,
    weather: body.weather ?? null,
    tags: body.tags ?? [],
    attachments,
    ...textFields(deps, body.content),
    version: 1,
    state: "active",
    private: viewer.privateMode === true,
    createdAt: now,
    updatedAt: now,
    deletedAt: null,
    purgeAfter: null,
  };
  if (!(await deps.db.journalEntries.insertUnique(doc))) {
    throw ApiError.conflict("entry_exists", `There is already an entry for ${body.date}.`);
  }
  await journalChanged(deps, viewer.id, [monthOf(doc.date)]);
  return versioned(doc);
}

/** One of the caller's entries (a deleted one too, so it can be looked at before restoring it). */
export async function getEntry(deps: Deps, viewer: Viewer, id: string): Promise<Versioned> {
  const doc = await deps.db.journalEntries.findOne({ _id: new ObjectId(id), userId: new ObjectId(viewer.id) });
  if (!doc) throw notFound();
  return versioned(doc);
}

/** The caller's entries, newest date first, optionally within [from, to]; `state=deleted` lists the bin. */
export async function listEntries(deps: Deps, viewer: Viewer, query: EntriesQuery): Promise<EntryPage> {
  const base: Filter = { userId: new ObjectId(viewer.id), state: query.state };
  // The bin shows what can still be restored (a purge may not have run yet).
  if (query.state === "deleted") base.purgeAfter = { $gt: deps.clock.now() };
  if (query.from || query.to) {
    base.date = { ...(query.from ? { $gte: query.from } : {}), ...(query.to ? { $lte: query.to } : {}) };
  }
  // Keyset on (date, _id): deleted entries may share a date, live ones never do.
  const after = query.cursor ? decodeDateCursor(query.cursor) : null;
  const filter = after
    ? { $and: [base, { $or: [{ date: { $lt: after.date } }, { date: after.date, _id: { $lt: after.id } }] }] }
    : base;
  const docs = await deps.db.journalEntries.find(filter, { sort: { date: -1, _id: -1 }, limit: query.limit + 1 });
  const items = docs.slice(0, query.limit);
  const last = items.at(-1);
  return {
    items: items.map(toEntry),
    nextCursor: docs.length > query.limit && last ? encodeDateCursor({ date: last.date, id: last._id }) : null,
  };
}

/** Why a conditional change matched nothing: no such entry of the caller's (404), or another version (412). */
async function refusal(deps: Deps, viewer: Viewer, id: ObjectId, state: JournalEntryDoc["state"]): Promise<never> {
  const current = await deps.db.journalEntries.findOne(
    { _id: id, userId: new ObjectId(viewer.id) },
    { projection: { version: 1, state: 1 } },
  );
  if (!current || current.state !== state) throw notFound();
  throw stale(current);
}

/**
 * PATCH: one conditional update (`version` in the If-Match versions), which also moves the version; the words
 * are recounted when the content changes. Made in private mode, the entry becomes private for good.
 */
export async function updateEntry(
  deps: Deps,
  viewer: Viewer,
  id: string,
  ifMatch: string | undefined,
  patch: UpdateEntryBody,
): Promise<Versioned> {
  const versions = versionsOf(ifMatch);
  checkTags(deps, patch.tags);
  const set: Record<string, unknown> = { updatedAt: deps.clock.now() };
  for (const field of ["title", "content", "mood", "location", "weather", "tags"] as const) {
    if (patch[field] !== undefined) set[field] = patch[field];
  }
  if (patch.content !== undefined) Object.assign(set, textFields(deps, patch.content));
  if (patch.attachmentIds !== undefined) set.attachments = await attachmentsFor(deps, viewer, patch.attachmentIds);
  if (viewer.privateMode) set.private = true;
  const _id = new ObjectId(id);
  const doc = versions.length
    ? await deps.db.journalEntries.findOneAndUpdate(
        { _id, userId: new ObjectId(viewer.id), state: "active", version: { $in: versions } },
        { $set: set, $inc: { version: 1 } },
        { returnDocument: "after" },
      )
    : null;
  if (!doc) return refusal(deps, viewer, _id, "active");
  await journalChanged(deps, viewer.id, [monthOf(doc.date)]);
  return versioned(doc);
}

/** DELETE: soft, against a version; restorable for JOURNAL_RESTORE_DAYS, then purged by a job. */
export async function deleteEntry(deps: Deps, viewer: Viewer, id: string, ifMatch: string | undefined): Promise<void> {
  const versions = versionsOf(ifMatch);
  const now = deps.clock.now();
  const _id = new ObjectId(id);
  const doc = versions.length
    ? await deps.db.journalEntries.findOneAndUpdate(
        { _id, userId: new ObjectId(viewer.id), state: "active", version: { $in: versions } },
        {
          $set: {
            state: "deleted",
            deletedAt: now,
            purgeAfter: addDays(now, deps.config.journal.restoreDays),
            updatedAt: now,
          },
          $inc: { version: 1 },
        },
        { returnDocument: "after", projection: { date: 1 } },
      )
    : null;
  if (!doc) return refusal(deps, viewer, _id, "active");
  await journalChanged(deps, viewer.id, [monthOf(doc.date)]);
}

/**
 * Brings a deleted entry back while it is restorable (If-Match optional: checked when sent). If another entry
 * was written for that date meanwhile, the unique index refuses it: 409 `entry_exists`, nothing changes.
 */
export async function restoreEntry(
  deps: Deps,
  viewer: Viewer,
  id: string,
  ifMatch: string | undefined,
): Promise<Versioned> {
  const versions = ifMatch === undefined ? null : versionsOf(ifMatch);
  const now = deps.clock.now();
  const _id = new ObjectId(id);
  const filter: Filter = { _id, userId: new ObjectId(viewer.id), state: "deleted", purgeAfter: { $gt: now } };
  if (versions) filter.version = { $in: versions };
  const outcome = await deps.db.journalEntries.updateUnique(
    filter,
    { $set: { state: "active", deletedAt: null, purgeAfter: null, updatedAt: now }, $inc: { version: 1 } },
    { returnDocument: "after" },
  );
  if (!outcome) throw ApiError.conflict("entry_exists", "Another entry now holds that date; delete it first.");
  if (!outcome.document) {
    const current = await deps.db.journalEntries.findOne(
      { _id, userId: new ObjectId(viewer.id) },
      { projection: { version: 1, state: 1, purgeAfter: 1 } },
    );
    const restorable = current?.state === "deleted" && current.purgeAfter && current.purgeAfter > now;
    if (!current || !restorable) throw notFound();
    throw stale(current);
  }
  await journalChanged(deps, viewer.id, [monthOf(outcome.document.date)]);
  return versioned(outcome.document);
}
