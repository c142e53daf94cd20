/**
 * Pure trust and report-weight math (no I/O), so the rules can be unit-tested and stated in README.
 *
 * - Trust scores live in [0, 100] and start at 50.
 * - A report's weight: trustFactor × accuracyFactor, where trustFactor = trustScore / 50 (a new account
 *   weighs 1, a fully trusted one 2, a distrusted one near 0) and accuracyFactor = 1 until the reporter has
 *   `minReports` resolved reports, then 2 × actioned / (actioned + dismissed), floored at 0.1 (Discourse-style:
 *   reporters whose reports hold up count more, serial false reporters barely count).
 * - ×ageFactor: a reporter's weight grows with account age, from `newReporterFactor` at sign-up to 1 at
 *   `fullWeightAgeDays`, so accounts made for a brigade barely count.
 * - Shadow-banned reporters weigh 0 (their reports are kept for moderators).
 * - Reaching the threshold hides content at once only if at least one open report carries
 *   `autoHideMinWeight` (an established reporter); reports from new or distrusted accounts alone leave the
 *   content up, waiting in the moderator queue.
 * - A target crosses when the summed weight of its open reports reaches the threshold; content by accounts
 *   younger than `newAccountDays` uses threshold × `newAccountFactor` (throwaway accounts cross sooner).
 */

import { DAY_MS } from "../../platform/time";

export const TRUST_MIN = 0;
export const TRUST_MAX = 100;
export const TRUST_START = 50;
const ACCURACY_FLOOR = 0.1;

export interface ReporterStanding {
  trustScore: number | null | undefined;
  reportsActioned: number | null | undefined;
  reportsDismissed: number | null | undefined;
  /** A shadow-banned reporter's reports are kept for moderators but weigh nothing. */
  shadowBanned?: boolean | null;
  /** Days since the reporter signed up (absent: treated as fully grown). */
  accountAgeDays?: number;
}

export interface WeightRules {
  /** Resolved reports a reporter needs before their accuracy counts. */
  accuracyMinReports: number;
  /** Account age at which a reporter's weight stops growing. */
  reporterFullWeightDays: number;
  /** The age factor of a brand-new reporter (0–1). */
  newReporterFactor: number;
}

export interface ThresholdRules {
  reportThreshold: number;
  newAccountDays: number;
  newAccountThresholdFactor: number;
}

export function clampTrust(score: number): number {
  if (!Number.isFinite(score)) return TRUST_START;
  return Math.min(TRUST_MAX, Math.max(TRUST_MIN, score));
}

/** Share of a reporter's resolved reports that were actioned, or null while too few are resolved to judge. */
export function reporterAccuracy(standing: ReporterStanding, rules: WeightRules): number | null {
  const actioned = Math.max(0, standing.reportsActioned ?? 0);
  const dismissed = Math.max(0, standing.reportsDismissed ?? 0);
  const resolved = actioned + dismissed;
  if (resolved < rules.accuracyMinReports || resolved === 0) return null;
  return actioned / resolved;
}

/** The weight one report carries, rounded to hundredths so sums are stable when stored and re-added. */
export function reportWeight(standing: ReporterStanding, rules: WeightRules): number {
  if (standing.shadowBanned) return 0;
  const trustFactor = clampTrust(standing.trustScore ?? TRUST_START) / TRUST_START;
  const accuracy = reporterAccuracy(standing, rules);
  const accuracyFactor = accuracy === null ? 1 : Math.max(ACCURACY_FLOOR, 2 * accuracy);
  const grown =
    standing.accountAgeDays === undefined || rules.reporterFullWeightDays === 0
      ? 1
      : Math.min(1, Math.max(0, standing.accountAgeDays) / rules.reporterFullWeightDays);
  const ageFactor = rules.newReporterFactor + (1 - rules.newReporterFactor) * grown;
  return Math.round(trustFactor * accuracyFactor * ageFactor * 100) / 100;
}

/** Whether a crossing may hide content at once: some open report comes from an established reporter. */
export function mayAutoHide(weights: number[], autoHideMinWeight: number): boolean {
  return weights.some((w) => w >= autoHideMinWeight - 1e-9);
}

/** The summed weight at which a target is hidden (content) or queued (users) pending review. */
export function reportThreshold(authorCreatedAt: Date | null | undefined, now: Date, rules: ThresholdRules): number {
  const newAccountMs = rules.newAccountDays * DAY_MS;
  const isNew = authorCreatedAt ? now.getTime() - authorCreatedAt.getTime() < newAccountMs : false;
  return isNew ? rules.reportThreshold * rules.newAccountThresholdFactor : rules.reportThreshold;
}

/** True when the summed open weight is at or over the threshold (floating-point tolerant). */
export function overThreshold(sum: number, threshold: number): boolean {
  return sum >= threshold - 1e-9;
}
