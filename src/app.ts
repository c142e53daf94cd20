import { swaggerUI } from "@hono/swagger-ui";
import { OpenAPIHono } from "@hono/zod-openapi";
import type { Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { cors } from "hono/cors";
import { methodNotAllowed } from "hono/method-not-allowed";
import { requestId } from "hono/request-id";
import type { Deps } from "./deps";
import { collectActivity } from "./features/analytics/activity";
import { analyticsRoutes } from "./features/analytics/routes";
import { auditRoutes } from "./features/audit/routes";
import { authRoutes } from "./features/auth/routes";
import { billingRoutes } from "./features/billing/routes";
import { blocksRoutes } from "./features/blocks/routes";
import { checkinRoutes } from "./features/checkin/routes";
import { commentsRoutes } from "./features/comments/routes";
import { consentsRoutes } from "./features/consents/routes";
import { feedsRoutes } from "./features/feeds/routes";
import { flagsRoutes } from "./features/flags/routes";
import { followsRoutes } from "./features/follows/routes";
import { gemsRoutes } from "./features/gems/routes";
import { generationsRoutes } from "./features/generations/routes";
import { healthRoutes } from "./features/health/routes";
import { journalRoutes } from "./features/journal/routes";
import { leaderboardsRoutes } from "./features/leaderboards/routes";
import { mediaRoutes } from "./features/media/routes";
import { messagingRoutes } from "./features/messaging/routes";
import { moderationRoutes } from "./features/moderation/routes";
import { notificationsRoutes } from "./features/notifications/routes";
import { postsRoutes } from "./features/posts/routes";
import { privacyRoutes } from "./features/privacy/routes";
import { registerPushDelivery } from "./features/push/listener";
import { referralsRoutes } from "./features/referrals/routes";
import { savesRoutes } from "./features/saves/routes";
import { settingsRoutes } from "./features/settings/routes";
import { storiesRoutes } from "./features/stories/routes";
import { streamsRoutes } from "./features/streams/routes";
import { tagsRoutes } from "./features/tags/routes";
import { usageRoutes } from "./features/usage/routes";
import { usersRoutes } from "./features/users/routes";
import { votesRoutes } from "./features/votes/routes";
import { backgroundWork } from "./http/background";
import { clientIp } from "./http/client-ip";
import type { AppEnv } from "./http/context";
import { problemResponse, toProblemResponse } from "./http/errors";
import { requestLogging } from "./http/logging";
import { apiRateLimit } from "./http/ratelimit";
import { matchedRouteMeta } from "./http/routes";
import { jobsRoutes } from "./scheduler/admin/routes";

/** Used only when the configuration itself could not be loaded (no Deps to read it from). */
const DEFAULT_RETRY_AFTER_SECONDS = 5;

/**
 * The document's own fields (the operations and schemas come from the routes). Production serves the whole
 * document as a static asset, written by the build from this source (scripts/build-worker.ts).
 */
export const OPENAPI_DOCUMENT = {
  openapi: "3.1.0",
  info: {
    title: "Circle API",
    version: "1.0.0",
    description:
      "The edge API behind Circle. Errors are application/problem+json (RFC 9457) with a `code` from a fixed " +
      "list, a `requestId` and, where a code has several causes, a stable `reason` (extension member); every " +
      "response carries `X-Request-Id`; rate-limited responses carry `RateLimit-Limit`, `RateLimit-Remaining`, " +
      "`RateLimit-Reset`, and 429/503 carry `Retry-After`. Operations that need a role list it in `x-roles`.",
  },
};

/** Builds the HTTP app; `depsFor` returns the isolate's Deps for a request's bindings (throws on bad config). */
export function createApp(depsFor: (env: Record<string, unknown>) => Deps): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>();
  registerPushDelivery();

  app.use(requestId({ limitLength: 128 }));
  app.use(async (c, next) => {
    c.set("deps", depsFor((c.env ?? {}) as Record<string, unknown>));
    c.set("clientIp", clientIp(c.req.raw.headers));
    await next();
  });
  app.use(requestLogging());
  // Mail and push go out after the answer (the request has already recorded what it owes).
  app.use(backgroundWork());
  // Analytics events a request records (votes, follows, …) are buffered in one write after the answer.
  app.use((c, next) => collectActivity(c.var.deps, next));
  app.use(
    cors({
      origin: (origin, c) => {
        const allowed = c.var.deps.config.http.corsOrigins;
        return allowed.includes("*") ? "*" : allowed.includes(origin) ? origin : null;
      },
      allowHeaders: ["Authorization", "Content-Type", "Idempotency-Key", "X-Device-Id", "X-Request-Id"],
      exposeHeaders: [
        "X-Request-Id",
        "RateLimit-Limit",
        "RateLimit-Remaining",
        "RateLimit-Reset",
        "Retry-After",
        "Idempotent-Replayed",
      ],
      maxAge: 600,
    }),
  );
  app.use(methodNotAllowed({ app, onMethodNotAllowed: methodNotAllowedProblem }));
  // Before the rate limit: an oversized body is refused without a round trip, and a route's byte budget
  // (checked with the rate limit) is charged the size of a body already known to fit.
  app.use("/v1/*", async (c, next) => {
    // Uploads stream their bytes and cap them themselves (features/media).
    if (matchedRouteMeta(c)?.streamsBody) return next();
    const { config } = c.var.deps;
    const maxSize = matchedRouteMeta(c)?.maxBodyBytes?.(config) ?? config.http.maxBodyBytes;
    return bodyLimit({
      maxSize,
      onError: (c) => problemResponse(c, "payload_too_large", `The request body must not exceed ${maxSize} bytes.`),
    })(c, next);
  });
  app.use(apiRateLimit());

  app.route("/", healthRoutes);
  app.route("/", analyticsRoutes);
  app.route("/", jobsRoutes);
  app.route("/", authRoutes);
  app.route("/", usersRoutes);
  app.route("/", checkinRoutes);
  app.route("/", privacyRoutes);
  app.route("/", followsRoutes);
  app.route("/", blocksRoutes);
  app.route("/", generationsRoutes);
  app.route("/", postsRoutes);
  app.route("/", votesRoutes);
  app.route("/", tagsRoutes);
  app.route("/", feedsRoutes);
  app.route("/", commentsRoutes);
  app.route("/", notificationsRoutes);
  app.route("/", flagsRoutes);
  app.route("/", gemsRoutes);
  app.route("/", moderationRoutes);
  app.route("/", auditRoutes);
  app.route("/", leaderboardsRoutes);
  app.route("/", referralsRoutes);
  app.route("/", savesRoutes);
  app.route("/", settingsRoutes);
  app.route("/", consentsRoutes);
  app.route("/", journalRoutes);
  app.route("/", billingRoutes);
  app.route("/", usageRoutes);
  app.route("/", messagingRoutes);
  app.route("/", storiesRoutes);
  app.route("/", streamsRoutes);
  app.route("/", mediaRoutes);

  app.openAPIRegistry.registerComponent("securitySchemes", "bearer", {
    type: "http",
    scheme: "bearer",
    bearerFormat: "JWT",
  });
  app.openAPIRegistry.registerComponent("securitySchemes", "workerToken", { type: "http", scheme: "bearer" });
  app.doc31("/openapi.json", OPENAPI_DOCUMENT);
  app.get("/docs", swaggerUI({ url: "/openapi.json" }));

  app.notFound((c) => problemResponse(c, "not_found", `No route for ${c.req.method} ${new URL(c.req.url).pathname}.`));
  app.onError((error, c) => {
    const deps = c.get("deps") as Deps | undefined;
    const retryAfter = deps?.config.unavailableRetryAfterSeconds ?? DEFAULT_RETRY_AFTER_SECONDS;
    const response = toProblemResponse(c, error, retryAfter);
    if (response.status === 503) {
      deps?.log.warn("store unavailable", { requestId: c.get("requestId"), error: error.message });
    } else if (response.status >= 500) {
      const fields = { requestId: c.get("requestId"), error: error.message, name: error.name, stack: error.stack };
      if (deps) deps.log.error("request failed", fields);
      else console.error(JSON.stringify({ level: "error", msg: "request failed", ...fields }));
    }
    return response;
  });
  return app;
}

function methodNotAllowedProblem(c: Context<AppEnv>, allowed: string[]): Response {
  return problemResponse(c, "method_not_allowed", `Use one of: ${allowed.join(", ")}.`, {
    headers: { Allow: allowed.join(", ") },
  });
}
