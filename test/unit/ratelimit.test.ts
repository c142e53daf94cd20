import { describe, expect, it } from "vitest";
import { ipv6Prefix64 } from "../../src/http/client-ip";
import { decide } from "../../src/platform/ratelimit";

describe("sliding window decision", () => {
  const limit = 10;
  const window = 60;

  it("reports the remaining budget from the weighted count", () => {
    // 30 s into the window: half of the previous window's 8 still counts, plus 3 now = 7 → 3 left.
    const d = decide({ allowed: true, current: 3, previous: 8, nowMs: 30_000 }, limit, window);
    expect(d).toMatchObject({ allowed: true, remaining: 3, resetSeconds: 30, retryAfterSeconds: 0 });
  });

  it("asks a caller over the limit to wait until the previous window has decayed enough", () => {
    // 15 s in: weight 0.75 × 12 + 1 = 10 ≥ 10. One more is allowed once 12·(1−e)+1 < 10 → e > 0.25.
    const d = decide({ allowed: false, current: 1, previous: 12, nowMs: 15_000 }, limit, window);
    expect(d.allowed).toBe(false);
    expect(d.remaining).toBe(0);
    expect(d.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    expect(15 + d.retryAfterSeconds).toBeGreaterThan(0.25 * 60);
    expect(15 + d.retryAfterSeconds).toBeLessThanOrEqual(0.25 * 60 + 1);
  });

  it("asks a caller who filled the current window to wait into the next one", () => {
    const d = decide({ allowed: false, current: 10, previous: 0, nowMs: 50_000 }, limit, window);
    // Next window starts in 10 s; then 10 × (1 − e) < 10 needs a sliver more.
    expect(d.retryAfterSeconds).toBeGreaterThanOrEqual(10);
    expect(d.retryAfterSeconds).toBeLessThanOrEqual(17);
    expect(d.resetSeconds).toBe(10);
  });
});

describe("client IP keys", () => {
  it("groups IPv6 callers by their /64", () => {
    expect(ipv6Prefix64("2001:db8:85a3:1:aaaa::1")).toBe("2001:db8:85a3:1::/64");
    expect(ipv6Prefix64("2001:db8::1")).toBe("2001:db8:0:0::/64");
    expect(ipv6Prefix64("2001:db8:85a3:1:bbbb::2")).toBe(ipv6Prefix64("2001:db8:85a3:1:aaaa::1"));
  });
});
