import { PageQuery } from "../../core/schemas";
import { json, problems, router } from "../../http/openapi";
import { authedRoute } from "../../http/routes";
import { ReferralSummary } from "./schema";
import { myReferrals } from "./service";

const referralsRoute = authedRoute({
  method: "get",
  path: "/v1/me/referrals",
  tags: ["gems"],
  summary: "The caller's referral code, validated referrals, bonus window and the people they invited",
  description:
    "A referral is validated when the invited person is active (their first post, or a check-in on a later day " +
    "than signup, per REFERRAL_VALIDATE_ON) and shares no device or IP with the referrer; validation pays " +
    "REFERRAL_BONUS_GEMS and opens a window in which the referrer's posts earn the multiplier. At most " +
    "REFERRAL_DAILY_CAP validations per referrer per UTC day; the rest wait for a later day. Newest first.",
  request: { query: PageQuery },
  responses: { 200: json(ReferralSummary, "Referrals"), ...problems(404) },
});

export const referralsRoutes = router().openapi(referralsRoute, async (c) =>
  c.json(await myReferrals(c.var.deps, c.var.viewer, c.req.valid("query")), 200),
);
