import type { ObjectId } from "../../platform/ids";

export const MOODS = ["ecstatic", "happy", "neutral", "sad", "anxious", "angry"] as const;
export type Mood = (typeof MOODS)[number];

/** Where an attachment's image came from: the caller's own generations now; uploads (`media`) later. */
export const ATTACHMENT_SOURCES = ["generation"] as const;
export type AttachmentSource = (typeof ATTACHMENT_SOURCES)[number];

/**
 * An image on an entry, kept as a snapshot of what it shows: a generation job expires after 7 days, the entry
 * does not. `source` + `sourceId` say where it came from, so uploaded media can join as another source.
 */
export interface JournalAttachment {
  source: AttachmentSource;
  sourceId: ObjectId;
  url: string;
  thumbnailUrl: string | null;
  width: number | null;
  height: number | null;
  blurhash: string | null;
}

/**
 * `journal_entries` (seed 002): one live entry per user and calendar date (a unique index over `state: "active"`
 * entries), private to its author. `date` is the day in `timezone`, the zone it was written in, kept so that
 * travel never re-dates history. `version` is the optimistic lock: every change moves it by one, and a change
 * applies only to the version it was made against. A deleted entry is `state: "deleted"` until `purgeAfter`.
 */
export interface JournalEntryDoc {
  _id: ObjectId;
  userId: ObjectId;
  date: string;
  timezone: string;
  title: string;
  /** Markdown. */
  content: string;
  mood: Mood | null;
  location: string | null;
  weather: string | null;
  /** Normalised (see features/journal/schema.ts `normalizeTags`), unique, in the order given. */
  tags: string[];
  attachments: JournalAttachment[];
  wordCount: number;
  readingTimeSeconds: number;
  version: number;
  state: "active" | "deleted";
  /** Written or edited while private mode was on: never part of an insight or trend, even once it is off. */
  private: boolean;
  createdAt: Date;
  updatedAt: Date;
  deletedAt: Date | null;
  /** When the `journal-purge` job removes a deleted entry for good. */
  purgeAfter: Date | null;
}

export const INSIGHT_KINDS = ["weekly", "monthly"] as const;
export type InsightKind = (typeof INSIGHT_KINDS)[number];

/** Deterministic statistics of one period's entries (private-mode entries never included). */
export interface PeriodStats {
  entries: number;
  words: number;
  averageWords: number;
  /** Longest run of consecutive days with an entry inside the period. */
  longestStreak: number;
  /** Most frequent first (ties by name), with counts. */
  moods: { mood: Mood; count: number }[];
  tags: { tag: string; count: number }[];
  /** Mean of the moods' scores (ecstatic 2 … angry −2), null without moods. */
  averageMood: number | null;
}

/** `journal_insights` (seed 002): one per user, kind and period, written by the `journal-insights` job. */
export interface JournalInsightDoc {
  _id: ObjectId;
  userId: ObjectId;
  kind: InsightKind;
  /** First and last calendar day of the period (a Monday–Sunday week, or a month). */
  periodStart: string;
  periodEnd: string;
  stats: PeriodStats;
  previous: PeriodStats;
  /** This period against the previous one. */
  shift: { entries: number; words: number; averageMood: number | null };
  summary: string;
  generatedAt: Date;
  /** Set once the notification announcing it went out (a run that crashed before that sends it next time). */
  notifiedAt: Date | null;
}

/** How far the `journal-insights` job got through one period's authors (`_id` = `{kind}:{periodStart}`). */
export interface JournalInsightRunDoc {
  _id: string;
  kind: InsightKind;
  periodStart: string;
  periodEnd: string;
  /** The last author done, in `_id` order (null: none yet). */
  afterUserId: ObjectId | null;
  done: boolean;
  startedAt: Date;
  finishedAt: Date | null;
}
