import type { FcmMessage } from "../../platform/fcm";

/**
 * FCM HTTP v1 messages for a grouped notification and for a summary (pure). One collapse identifier per
 * aggregation key, set where each platform replaces a shown notification with a newer one of the same id:
 * `android.notification.tag` (the drawer) and `android.collapse_key` (messages queued while offline),
 * `apns-collapse-id`, and the web notification `tag`. So "ada and 4 others voted on your post" replaces
 * "ada and 3 others…" on the device instead of stacking. The badge is the recipient's unread count.
 */

/** apns-collapse-id may be at most 64 bytes; aggregation keys are ASCII and nearly always far shorter. */
const MAX_COLLAPSE_ID = 64;
export const SUMMARY_COLLAPSE_ID = "summary";
// FCM refuses these data keys (and any starting with google. or gcm.).
const RESERVED_DATA_KEY = /^(from|message_type|notification|google\..*|gcm\..*)$/;

export function collapseIdFor(aggregationKey: string): string {
  const ascii = aggregationKey.replace(/[^\x21-\x7e]/g, "_");
  if (ascii.length <= MAX_COLLAPSE_ID) return ascii;
  // Too long: a prefix plus a hash of the whole key, still one id per key.
  return `${ascii.slice(0, MAX_COLLAPSE_ID - 9)}#${fnv1a(aggregationKey)}`;
}

function fnv1a(text: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash.toString(16).padStart(8, "0");
}

interface Presentation {
  token: string;
  collapseId: string;
  title: string;
  body: string | null;
  imageUrl: string | null;
  badge: number;
  data: Record<string, string>;
}

function message(p: Presentation): FcmMessage {
  const data: Record<string, string> = {};
  for (const [key, value] of Object.entries(p.data)) if (!RESERVED_DATA_KEY.test(key)) data[key] = String(value);
  const image = p.imageUrl?.startsWith("https://") ? p.imageUrl : null;
  return {
    token: p.token,
    notification: { title: p.title, ...(p.body ? { body: p.body } : {}), ...(image ? { image } : {}) },
    data,
    android: {
      collapse_key: p.collapseId,
      notification: { tag: p.collapseId, notification_count: p.badge },
    },
    apns: {
      headers: { "apns-collapse-id": p.collapseId },
      payload: { aps: { badge: p.badge, "thread-id": p.collapseId } },
    },
    webpush: { notification: { tag: p.collapseId } },
  };
}

export interface GroupPush {
  notificationId: string;
  type: string;
  aggregationKey: string;
  aggregationCount: number;
  title: string;
  body: string | null;
  imageUrl: string | null;
  actionType: string | null;
  actionPayload: Record<string, string>;
}

/** The push for one grouped notification as it now stands. */
export function groupMessage(token: string, group: GroupPush, badge: number): FcmMessage {
  return message({
    token,
    collapseId: collapseIdFor(group.aggregationKey),
    title: group.title,
    body: group.body,
    imageUrl: group.imageUrl,
    badge,
    data: {
      ...group.actionPayload,
      notificationId: group.notificationId,
      type: group.type,
      aggregationKey: group.aggregationKey,
      aggregationCount: String(group.aggregationCount),
      ...(group.actionType ? { actionType: group.actionType } : {}),
    },
  });
}

/** One push for several notifications held back or beyond the hourly cap: a newer summary replaces an older one. */
export function summaryMessage(token: string, count: number, titles: string[], badge: number): FcmMessage {
  const shown = titles.slice(0, 3);
  const more = count - shown.length;
  return message({
    token,
    collapseId: SUMMARY_COLLAPSE_ID,
    title: `${count} new notifications`,
    body: shown.join(" · ") + (more > 0 ? ` · and ${more} more` : ""),
    imageUrl: null,
    badge,
    data: { type: "summary", count: String(count), actionType: "open_screen", screen: "notifications" },
  });
}
