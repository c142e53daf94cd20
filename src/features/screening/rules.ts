/**
 * Automatic screening at creation, shared by posts and comments: text with a word of POST_BANNED_WORDS is held
 * `pending`, an image the generator scored above POST_NSFW_FLAG_THRESHOLD is held `flagged`. Held content is
 * hidden from everyone but its author and waits in the moderator queue with its source.
 */
export type HoldSource = "banned_words" | "nsfw_score" | "report_threshold";

export interface Screening {
  status: "approved" | "pending" | "flagged";
  hold: { source: HoldSource; at: Date } | null;
}

export interface ScreeningRules {
  bannedWords: string[];
  nsfwFlagThreshold: number;
}

/** True when the text contains one of the banned words as a whole word (case-insensitive, any script). */
export function hasBannedWord(text: string, bannedWords: string[]): boolean {
  if (bannedWords.length === 0) return false;
  const words = new Set(text.toLowerCase().split(/[^\p{L}\p{N}]+/u));
  return bannedWords.some((w) => words.has(w));
}

export function screen(
  content: { text: string; nsfwScore?: number | null },
  rules: ScreeningRules,
  now: Date,
): Screening {
  if (content.nsfwScore != null && content.nsfwScore > rules.nsfwFlagThreshold) {
    return { status: "flagged", hold: { source: "nsfw_score", at: now } };
  }
  if (hasBannedWord(content.text, rules.bannedWords)) {
    return { status: "pending", hold: { source: "banned_words", at: now } };
  }
  return { status: "approved", hold: null };
}
