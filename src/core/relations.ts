/**
 * What one person has done about others, and others about them, as far as seeing each other goes:
 * - a **block** works both ways: neither sees the other's profile, posts or comments (404), and neither can
 *   follow, vote on, comment on, reply to, gift, report or message the other;
 * - a **mute** is one-way and silent: the muted person's content leaves the muter's feeds and notifications,
 *   and nothing else changes (they are not told; direct links still open).
 *
 * Cached per user in Redis as one set (features/relations): `b>{id}` (I block them), `b<{id}` (they block
 * me), `m>{id}` (I mute them).
 */
export class Relations {
  private constructor(
    private readonly blocking: ReadonlySet<string>,
    private readonly blockedBy: ReadonlySet<string>,
    private readonly muting: ReadonlySet<string>,
  ) {}

  static readonly none = new Relations(new Set(), new Set(), new Set());

  static fromMembers(members: readonly string[]): Relations {
    const of = (prefix: string) =>
      new Set(members.filter((m) => m.startsWith(prefix)).map((m) => m.slice(prefix.length)));
    return new Relations(of(BLOCKING), of(BLOCKED_BY), of(MUTING));
  }

  /** Either of the two has blocked the other: each is invisible to the other, and untouchable. */
  blockedWith(userId: string): boolean {
    return this.blocking.has(userId) || this.blockedBy.has(userId);
  }

  isBlocking(userId: string): boolean {
    return this.blocking.has(userId);
  }

  isMuting(userId: string): boolean {
    return this.muting.has(userId);
  }

  /** Whether this person's content stays out of the viewer's feeds and notifications. */
  hides(userId: string): boolean {
    return this.blockedWith(userId) || this.muting.has(userId);
  }

  /** How many people this person blocks or mutes (their own choices, bounded by RELATIONS_MAX_PER_USER). */
  chosenCount(): number {
    return this.blocking.size + this.muting.size;
  }

  /** Everyone whose content stays out of the viewer's feeds (blocked either way, or muted). */
  hiddenIds(): string[] {
    return [...new Set([...this.blocking, ...this.blockedBy, ...this.muting])];
  }

  /** Everyone the viewer is blocked with, either way. */
  blockedIds(): string[] {
    return [...new Set([...this.blocking, ...this.blockedBy])];
  }
}

const BLOCKING = "b>";
const BLOCKED_BY = "b<";
const MUTING = "m>";

/** The members of the cached sets that record relations (the blocker's and the blocked person's sides). */
export const relationMember = {
  blocking: (otherId: string) => `${BLOCKING}${otherId}`,
  blockedBy: (otherId: string) => `${BLOCKED_BY}${otherId}`,
  muting: (otherId: string) => `${MUTING}${otherId}`,
};
