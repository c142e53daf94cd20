import type { CollectionKey } from "../../db/collections";
import type { Deps } from "../../deps";
import * as creatorAnalytics from "../analytics/creator-privacy";
import * as analytics from "../analytics/privacy";
import * as billing from "../billing/privacy";
import * as consents from "../consents/privacy";
import * as generations from "../generations/privacy";
import * as journal from "../journal/privacy";
import * as media from "../media/privacy";
import * as messaging from "../messaging/privacy";
import * as owed from "../owed/privacy";
import * as saves from "../saves/privacy";
import * as stories from "../stories/privacy";
import * as streams from "../streams/privacy";

/** A page of one export section, as a feature yields it. */
export interface ExportPage {
  section: string;
  items: unknown[];
}

/**
 * A feature's own part of export and erasure (its `privacy.ts`): the sections it exports, in the order it
 * yields them, and the collections those cover. `eraseUser` is idempotent and restartable, like the job.
 */
export interface FeaturePrivacy {
  feature: string;
  sections: Record<string, string>;
  collections: CollectionKey[];
  exportSections(deps: Deps, userId: string): AsyncGenerator<ExportPage>;
  eraseUser(deps: Deps, userId: string): Promise<void>;
}

export const FEATURE_PRIVACY: readonly FeaturePrivacy[] = [
  {
    feature: "analytics",
    sections: {
      analyticsEvents:
        "App analytics events sent while signed in, not yet moved to the analytics store (properties as sent)",
      analyticsQuarantined: "Events of yours the analytics flush set aside as unreadable or invalid",
    },
    collections: ["analyticsEvents", "analyticsQuarantine"],
    ...analytics,
  },
  {
    feature: "creator analytics",
    sections: {
      attribution: "Where you came from when you signed up (first-touch source, medium, campaign, referrer)",
      creatorAnalytics: "Your creator analytics per UTC day: profile views, impressions, engagements, follows, gems",
      postAnalytics: "Your posts' analytics per UTC day",
      recordedActivity: "What the API recorded you doing for analytics (votes, follows, comments, shares, views)",
    },
    collections: [],
    ...creatorAnalytics,
  },
  {
    feature: "consents",
    sections: {
      settings: "Your settings (time zone, language, theme, private mode, digests)",
      consents: "Every consent you gave or withdrew, with the document version, time and how",
    },
    collections: ["consents"],
    ...consents,
  },
  {
    feature: "journal",
    sections: {
      journalEntries: "Your journal entries, deleted ones still restorable too",
      journalInsights: "Weekly and monthly insights computed from your journal",
    },
    collections: ["journalEntries", "journalInsights"],
    ...journal,
  },
  {
    feature: "billing",
    sections: {
      subscriptions: "Your store and web subscriptions as they stand",
      subscriptionHistory: "Every subscription notification received for your account",
    },
    collections: ["subscriptions"],
    ...billing,
  },
  {
    feature: "messaging",
    sections: {
      messagingSettings: "Your messaging settings (read receipts)",
      conversations: "Conversations you are in (members are listed by id)",
      messages: "Messages you sent that have not disappeared",
    },
    collections: ["conversations", "messages"],
    ...messaging,
  },
  {
    feature: "stories",
    sections: {
      stories: "Your stories that have not expired",
      storyViews: "Stories you viewed",
    },
    collections: ["stories", "storyViews"],
    ...stories,
  },
  {
    feature: "streams",
    sections: {
      streams: "Live streams you ran or scheduled (what you set, and what each counted: viewers, gifts)",
      streamGiftsSent: "Gifts you sent during live streams (the streamer by id, amount, message)",
      streamGiftsReceived: "Gifts you received on your live streams (the sender by id, amount, fee, payout)",
      streamRoles: "Streams you co-hosted or moderated",
    },
    collections: ["liveStreams", "streamGifts", "streamGifters"],
    ...streams,
  },
  {
    feature: "generations",
    // The jobs are the privacy feature's own `generations` section; this erases their cached copies only.
    sections: {},
    collections: [],
    ...generations,
  },
  {
    feature: "media",
    sections: {
      media: "Your uploads (avatars, post images and videos, story and message images): type, size, state, URL",
    },
    collections: ["media"],
    ...media,
  },
  {
    feature: "saves",
    sections: { saves: "Posts you saved (which post, and when)" },
    collections: ["saves"],
    ...saves,
  },
  {
    feature: "owed effects",
    sections: {
      owedEffects: "What the service still owed, or did, after writes about you (kinds of effect, state, times)",
    },
    collections: ["owedEffects"],
    ...owed,
  },
];

/** Every feature section name with its description, in export order. */
export const FEATURE_SECTIONS: Record<string, string> = Object.assign({}, ...FEATURE_PRIVACY.map((f) => f.sections));
