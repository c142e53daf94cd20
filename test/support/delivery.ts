import { env } from "cloudflare:workers";
import type { Job } from "../../src/core/jobs";
import { createDeps, type Deps } from "../../src/deps";
import { type RunResult, runJob } from "../../src/scheduler/runner";
import { testConfig } from "./deps";

/**
 * What reached the local Resend and FCM stand-ins the test Worker sends through (the stack's, shared by every
 * suite: tests look at their own recipients' mail and their own devices only, and scope provider faults to them).
 */

const bindings = env as unknown as Record<string, string>;
const mailUrl = () => bindings.RESEND_API_URL as string;
const fcmUrl = () => bindings.FCM_API_URL as string;

/** A mail as the Resend stand-in lists it (`GET /__sent`; see scripts/local/email-server.ts). */
export interface SentEmail {
  id: string;
  createdAt: string;
  from: string;
  to: string[];
  subject: string;
  html: string | null;
  text: string | null;
  tags: { name: string; value: string }[];
  idempotencyKey: string | null;
}

/** A message as the FCM stand-in lists it (`GET /__sent`; see scripts/local/fcm-server.ts). */
export interface SentPush {
  name: string;
  receivedAt: string;
  target: { kind: string; value: string };
  message: Record<string, unknown>;
}

interface TrayNotification {
  message: string;
  title: string | null;
  body: string | null;
  badge: number | null;
  data: Record<string, string>;
  collapseId: string | null;
  replaces: string | null;
}

/** What a device shows (`GET /__devices/{token}`; see scripts/local/fcm-tray.ts). */
export interface DeviceView {
  token: string;
  unregistered: boolean;
  delivered: number;
  appBadge: number | null;
  tray: Record<"android" | "ios" | "web", TrayNotification[]>;
}

/** Polls `probe` until it returns something (not undefined/false), or fails naming `what`. */
export async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Every mail the stand-in accepted for this address, oldest first. */
export async function mailsTo(address: string): Promise<SentEmail[]> {
  const res = await fetch(`${mailUrl()}/__sent?to=${encodeURIComponent(address)}`);
  return (await res.json()) as SentEmail[];
}

export function tagOf(mail: SentEmail, name: string): string | undefined {
  return mail.tags.find((t) => t.name === name)?.value;
}

/** Waits for the mail to this address with this template (and, given, this outbox message id). */
export function mailFor(address: string, template: string, messageId?: string): Promise<SentEmail> {
  return eventually(`a ${template} mail to ${address}`, async () =>
    (await mailsTo(address))
      .reverse()
      .find((m) => tagOf(m, "template") === template && (!messageId || tagOf(m, "message_id") === messageId)),
  );
}

/** The link to `path` in a mail's text, and the one in its HTML: they must agree. */
export function linkIn(mail: SentEmail, path: string): URL {
  const pattern = new RegExp(`https?://[^\\s"<>]+${path.replace(/\//g, "\\/")}\\?token=[A-Za-z0-9_%-]+`, "g");
  const inText = mail.text?.match(pattern) ?? [];
  const inHtml = (mail.html?.match(pattern) ?? []).map((l) => l.replaceAll("&amp;", "&"));
  if (inText.length !== 1 || inHtml.length !== 1 || inText[0] !== inHtml[0]) {
    throw new Error(`expected one ${path} link in text and HTML, got ${inText.length} and ${inHtml.length}`);
  }
  return new URL(inText[0] as string);
}

export function tokenIn(mail: SentEmail, path: string): string {
  return linkIn(mail, path).searchParams.get("token") ?? "";
}

export interface Fault {
  status: 429 | 500 | 503;
  count?: number;
  retryAfterSeconds?: number;
}

/** Resend answers sends to this address with `status` (`count` times, or until cleared). */
export async function failMailTo(to: string, fault: Fault): Promise<void> {
  const res = await fetch(`${mailUrl()}/__faults`, { method: "POST", body: JSON.stringify({ ...fault, to }) });
  if (res.status !== 200) throw new Error(`mail fault refused: ${await res.text()}`);
}

export async function healMailTo(to: string): Promise<void> {
  await fetch(`${mailUrl()}/__faults?to=${encodeURIComponent(to)}`, { method: "DELETE" });
}

/** A registration token shaped like FCM's ("<instance id>:APA91b…"), unique to the caller. */
export function registrationToken(): string {
  const random = (n: number) =>
    btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(n))))
      .replace(/\+/g, "-")
      .replace(/\//g, "_")
      .replace(/=+$/, "");
  return `${random(16).slice(0, 22)}:APA91b${random(100)}`;
}

export async function device(token: string): Promise<DeviceView> {
  return (await (await fetch(`${fcmUrl()}/__devices/${encodeURIComponent(token)}`)).json()) as DeviceView;
}

/** Every message FCM accepted for this token, oldest first. */
export async function pushesTo(token: string): Promise<SentPush[]> {
  return (await (await fetch(`${fcmUrl()}/__sent?token=${encodeURIComponent(token)}`)).json()) as SentPush[];
}

/** Waits until FCM accepted at least `n` messages for this token. */
export function pushesArrive(token: string, n: number): Promise<SentPush[]> {
  return eventually(`${n} push(es) to a test device`, async () => {
    const pushes = await pushesTo(token);
    return pushes.length >= n ? pushes : undefined;
  });
}

/** FCM answers messages to this token with `status` (`count` times, or until cleared). */
export async function failPushesTo(token: string, fault: Fault): Promise<void> {
  const res = await fetch(`${fcmUrl()}/__faults`, { method: "POST", body: JSON.stringify({ ...fault, token }) });
  if (res.status !== 200) throw new Error(`push fault refused: ${await res.text()}`);
}

export async function healPushesTo(token: string): Promise<void> {
  await fetch(`${fcmUrl()}/__faults?token=${encodeURIComponent(token)}`, { method: "DELETE" });
}

/** The app was uninstalled from this device: FCM answers 404 UNREGISTERED from now on. */
export async function uninstall(token: string): Promise<void> {
  await fetch(`${fcmUrl()}/__tokens/${encodeURIComponent(token)}/unregister`, { method: "POST" });
}

/** Deps whose clock runs `offsetMs` ahead (a sweep "later"), optionally with other settings. */
export function depsLater(offsetMs: number, overrides: Record<string, string> = {}): Deps {
  return createDeps(testConfig(overrides), { clock: { now: () => new Date(Date.now() + offsetMs) } });
}

/**
 * Runs a sweep job once to its end (again when another run held the lease). `crashAt` makes the run die at that
 * checkpoint, as an isolate killed there would.
 */
export async function sweep(job: Job, deps: Deps, crashAt?: string): Promise<RunResult> {
  for (let i = 0; i < 50; i++) {
    const run = await runJob(deps, job, {
      trigger: "test",
      onCheckpoint: (name) => {
        if (name === crashAt) throw new Error(`crash at ${name}`);
      },
    });
    if (run.outcome !== "skipped") return run;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${job.name} stayed locked`);
}
