import { describe, expect, it } from "vitest";
import type { UserDoc } from "../../src/db";
import { maskEmail } from "../../src/features/auth/email";
import { ChangePasswordBody } from "../../src/features/auth/schema";
import { DeviceParams, toMe } from "../../src/features/users/schema";
import { ObjectId } from "../../src/platform/ids";

describe("maskEmail", () => {
  it.each([
    ["ada@example.com", "a***@example.com"],
    ["a@b.io", "a***@b.io"],
    ['"odd@local"@example.com', '"***@example.com'],
    ["no-at-sign", "***"],
    ["@example.com", "***"],
  ])("masks %s as %s", (email, masked) => {
    expect(maskEmail(email)).toBe(masked);
  });

  it("never contains the local part beyond its first character", () => {
    expect(maskEmail("secret.name@example.com")).not.toContain("secret");
  });
});

describe("DeviceParams", () => {
  const ok = (deviceId: string) => DeviceParams.safeParse({ deviceId }).success;
  it("accepts 1–128 characters of letters, digits and . _ : ~ -", () => {
    expect(ok("7E9B2C1A-4F0D-4C55-9E83-2D1A6B0C9F11")).toBe(true);
    expect(ok("a")).toBe(true);
    expect(ok("d".repeat(128))).toBe(true);
    expect(ok("pixel_8.pro:1~x")).toBe(true);
  });
  it.each(["", "d".repeat(129), "has space", "$email", "a/b", "ü", "a\nb", "%2F"])("refuses %j", (deviceId) => {
    expect(ok(deviceId)).toBe(false);
  });
});

describe("ChangePasswordBody", () => {
  it("refuses a new password equal to the current one, naming newPassword", () => {
    const result = ChangePasswordBody.safeParse({ currentPassword: "same secret!", newPassword: "same secret!" });
    expect(result.success).toBe(false);
    expect(result.error?.issues.map((i) => i.path.join("."))).toEqual(["newPassword"]);
  });
  it("accepts a different one of at least 8 characters", () => {
    expect(ChangePasswordBody.safeParse({ currentPassword: "x", newPassword: "12345678" }).success).toBe(true);
  });
});

describe("toMe: pending email", () => {
  const now = new Date("2030-01-01T12:00:00Z");
  const user = (pendingEmail: string | null, expiresAt: Date | null) =>
    ({
      _id: new ObjectId(),
      username: "ada",
      email: "ada@example.com",
      emailVerified: true,
      pendingEmail,
      pendingEmailExpiresAt: expiresAt,
      passwordHash: "$pbkdf2-sha256$i=100000$x$y",
      displayName: "Ada",
      createdAt: now,
      notificationPreferences: { push: true, email: true, inApp: true, marketing: false },
    }) as unknown as UserDoc;

  const LEGAL = { termsVersion: "1.0", privacyVersion: "1.0" };

  it("shows an open change with its expiry", () => {
    const later = new Date(now.getTime() + 60_000);
    expect(toMe(user("new@example.com", later), now, LEGAL)).toMatchObject({
      pendingEmail: "new@example.com",
      pendingEmailExpiresAt: later.toISOString(),
    });
  });
  it("hides an expired change, and shows none when there is none", () => {
    expect(toMe(user("new@example.com", now), now, LEGAL)).toMatchObject({
      pendingEmail: null,
      pendingEmailExpiresAt: null,
    });
    expect(toMe(user(null, null), now, LEGAL)).toMatchObject({ pendingEmail: null, pendingEmailExpiresAt: null });
  });
  it("never carries the password hash", () => {
    expect(JSON.stringify(toMe(user(null, null), now, LEGAL))).not.toContain("pbkdf2");
  });
});
