import { z } from "@hono/zod-openapi";
import type { ObjectId } from "../../platform/ids";
import { Me, Username } from "../users/schema";

/** `sessions` (seeds 001/004): one per signed-in device; refresh tokens stored only as SHA-256 hashes. */
export interface SessionDoc {
  _id: ObjectId;
  userId: ObjectId;
  refreshTokenHash: string;
  /** Hashes of tokens already rotated away; presenting one again means the token was stolen. */
  previousTokenHashes: string[];
  deviceId: string | null;
  platform: string | null;
  ipHash: string;
  userAgent: string | null;
  createdAt: Date;
  lastUsedAt: Date;
  expiresAt: Date;
  revokedAt: Date | null;
  revokedReason: string | null;
}

/** `email_tokens`: single-use verification and password-reset tokens, stored hashed. */
export interface EmailTokenDoc {
  _id: ObjectId;
  userId: ObjectId;
  purpose: "email_verification" | "password_reset";
  tokenHash: string;
  createdAt: Date;
  expiresAt: Date;
  usedAt: Date | null;
}

/** `email_outbox`: messages for the mail sender to deliver (deleted once sent; 1-day TTL). */
export interface EmailOutboxDoc {
  _id: ObjectId;
  userId: ObjectId;
  to: string;
  template: "verify_email" | "password_reset";
  data: Record<string, string>;
  createdAt: Date;
  sentAt: Date | null;
}

const Password = z.string().min(8, "at least 8 characters").max(256);
const Platform = z.enum(["ios", "android", "web"]);
const DeviceId = z.string().min(1).max(128);

export const SignupBody = z
  .object({
    username: Username,
    email: z.email().max(254),
    password: Password,
    displayName: z.string().trim().min(1).max(50).optional(),
    referralCode: z
      .string()
      .regex(/^[A-Z0-9]{8}$/, "8 letters or digits")
      .optional(),
    deviceId: DeviceId.optional(),
    platform: Platform.optional(),
    installSource: z.enum(["direct_link", "share_card", "qr_code"]).optional(),
  })
  .strict()
  .openapi("Signup");

export const LoginBody = z
  .object({
    login: z.string().min(1).max(254).openapi({ description: "Username or email" }),
    password: z.string().min(1).max(256),
    deviceId: DeviceId.optional(),
    platform: Platform.optional(),
    pushToken: z.string().min(1).max(512).optional(),
  })
  .strict()
  .openapi("Login");

export const RefreshBody = z
  .object({ refreshToken: z.string().min(16).max(256) })
  .strict()
  .openapi("Refresh");
export const ForgotBody = z.object({ email: z.email().max(254) }).strict();
export const ResetBody = z.object({ token: z.string().min(16).max(256), password: Password }).strict();
export const VerifyEmailBody = z.object({ token: z.string().min(16).max(256) }).strict();
export const OAuthBody = z
  .object({ idToken: z.string().min(1).max(8192), deviceId: DeviceId.optional(), platform: Platform.optional() })
  .strict();
export const OAuthProviderParam = z.object({ provider: z.enum(["google", "apple"]) });

export const TokenPair = z
  .object({ accessToken: z.string(), refreshToken: z.string(), expiresIn: z.number().int() })
  .openapi("TokenPair");
export const AuthResult = TokenPair.extend({ user: Me }).openapi("AuthResult");

export const SessionView = z
  .object({
    id: z.string(),
    deviceId: z.string().nullable(),
    platform: z.string().nullable(),
    userAgent: z.string().nullable(),
    createdAt: z.string(),
    lastUsedAt: z.string(),
    expiresAt: z.string(),
    current: z.boolean(),
  })
  .openapi("Session");
export const SessionList = z.object({ items: z.array(SessionView) }).openapi("SessionList");

export type SignupBody = z.infer<typeof SignupBody>;
export type LoginBody = z.infer<typeof LoginBody>;
export type TokenPair = z.infer<typeof TokenPair>;
export type SessionView = z.infer<typeof SessionView>;
