import type { FcmMessage } from "./fcm-message";
import { isObject, type Json } from "./standin-http";

/**
 * What a device behind a registration token would show, per platform, after FCM delivered to it. One
 * message carries overrides for all three platforms; which notification replaces which follows each
 * platform's documented "same identifier → one notification" rule:
 *
 *   android  `android.notification.tag` — "If specified and a notification with the same tag is already being
 *            shown, the new notification replaces the existing one. If not specified, each request creates a
 *            new notification." (`android.collapse_key` only collapses messages queued while the device is
 *            offline, so it does not change the drawer of an online device.)
 *   ios      `apns.headers["apns-collapse-id"]` — "Multiple notifications with the same collapse identifier
 *            are displayed to the user as a single notification."
 *   web      `webpush.notification.tag` — the Notifications API replaces a shown notification with the same
 *            tag. (`webpush.headers.Topic` replaces a message still queued at the push service: offline only.)
 *
 * Title/body come from the platform block when it has them, else from `message.notification` (the platform
 * fields "override" the common ones). A message with neither shows nothing (data-only). Badges: iOS uses
 * `apns.payload.aps.badge` (and keeps the last one as the app icon badge, silent pushes included), Android
 * `android.notification.notification_count`; web notifications carry no count.
 */

export type Platform = "android" | "ios" | "web";
const PLATFORMS: readonly Platform[] = ["android", "ios", "web"];

export interface TrayNotification {
  /** The FCM message name that put it there. */
  message: string;
  title: string | null;
  body: string | null;
  badge: number | null;
  data: Record<string, string>;
  /** The identifier that makes a later notification replace this one (null: never replaced). */
  collapseId: string | null;
  receivedAt: string;
  /** Name of the message whose notification this one replaced. */
  replaces: string | null;
}

export interface DeviceView {
  token: string;
  unregistered: boolean;
  /** Messages FCM delivered to this device (visible or data-only). */
  delivered: number;
  /** The iOS app icon badge: the last `aps.badge` delivered (null: never set). */
  appBadge: number | null;
  /** Visible notifications, newest first, as each platform would show them. */
  tray: Record<Platform, TrayNotification[]>;
}

interface Device {
  unregistered: boolean;
  delivered: number;
  appBadge: number | null;
  tray: Record<Platform, TrayNotification[]>;
}

type Presentation = Omit<TrayNotification, "message" | "receivedAt" | "replaces">;

export class Devices {
  private readonly devices = new Map<string, Device>();

  constructor(unregistered: Iterable<string> = []) {
    for (const token of unregistered) this.device(token).unregistered = true;
  }

  isUnregistered(token: string): boolean {
    return this.devices.get(token)?.unregistered ?? false;
  }

  setUnregistered(token: string, unregistered: boolean): void {
    this.device(token).unregistered = unregistered;
  }

  deliver(token: string, name: string, message: FcmMessage, at: number): void {
    const device = this.device(token);
    device.delivered++;
    const badge = apsOf(message)?.badge;
    if (typeof badge === "number") device.appBadge = badge;
    for (const platform of PLATFORMS) {
      const shown = present(platform, message);
      if (!shown) continue;
      const tray = device.tray[platform];
      const previous = shown.collapseId === null ? -1 : tray.findIndex((n) => n.collapseId === shown.collapseId);
      const replaced = previous >= 0 ? tray.splice(previous, 1)[0] : undefined;
      tray.unshift({
        ...shown,
        message: name,
        receivedAt: new Date(at).toISOString(),
        replaces: replaced?.message ?? null,
      });
    }
  }

  /** The user cleared every notification. */
  clear(token: string): void {
    const device = this.devices.get(token);
    if (device) device.tray = emptyTray();
  }

  view(token: string): DeviceView {
    const device = this.devices.get(token);
    return {
      token,
      unregistered: device?.unregistered ?? false,
      delivered: device?.delivered ?? 0,
      appBadge: device?.appBadge ?? null,
      tray: device ? structuredClone(device.tray) : emptyTray(),
    };
  }

  reset(): void {
    this.devices.clear();
  }

  private device(token: string): Device {
    let device = this.devices.get(token);
    if (!device) {
      device = { unregistered: false, delivered: 0, appBadge: null, tray: emptyTray() };
      this.devices.set(token, device);
    }
    return device;
  }
}

function emptyTray(): Record<Platform, TrayNotification[]> {
  return { android: [], ios: [], web: [] };
}

function present(platform: Platform, message: FcmMessage): Presentation | undefined {
  const common = message.notification ?? {};
  let title: string | undefined;
  let body: string | undefined;
  let collapseId: string | undefined;
  let badge: number | undefined;
  let data = message.data ?? {};
  switch (platform) {
    case "android": {
      const notification = message.android?.notification ?? {};
      title = notification.title ?? common.title;
      body = notification.body ?? common.body;
      collapseId = notification.tag;
      badge = notification.notification_count;
      data = message.android?.data ?? data;
      break;
    }
    case "ios": {
      // aps.alert is either the body text or a dictionary with title/body.
      const aps = apsOf(message);
      const alert = aps?.alert;
      const alertTitle = isObject(alert) ? stringOrUndefined(alert.title) : undefined;
      const alertBody = typeof alert === "string" ? alert : isObject(alert) ? stringOrUndefined(alert.body) : undefined;
      title = alertTitle ?? common.title;
      body = alertBody ?? common.body;
      collapseId = header(message.apns?.headers, "apns-collapse-id");
      badge = typeof aps?.badge === "number" ? aps.badge : undefined;
      break;
    }
    case "web": {
      const notification = message.webpush?.notification ?? {};
      title = stringOrUndefined(notification.title) ?? common.title;
      body = stringOrUndefined(notification.body) ?? common.body;
      collapseId = stringOrUndefined(notification.tag);
      data = message.webpush?.data ?? data;
      break;
    }
  }
  if (title === undefined && body === undefined) return undefined;
  return {
    title: title ?? null,
    body: body ?? null,
    badge: badge ?? null,
    data: { ...data },
    collapseId: collapseId ?? null,
  };
}

function apsOf(message: FcmMessage): Record<string, Json> | undefined {
  const aps = message.apns?.payload?.aps;
  return isObject(aps) ? aps : undefined;
}

function stringOrUndefined(value: Json | undefined): string | undefined {
  return typeof value === "string" ? value : undefined;
}

/** APNs header names are case-insensitive. */
function header(headers: Record<string, string> | undefined, name: string): string | undefined {
  const key = Object.keys(headers ?? {}).find((k) => k.toLowerCase() === name);
  return key === undefined ? undefined : headers?.[key];
}
