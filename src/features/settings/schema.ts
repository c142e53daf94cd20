import { z } from "zod";
import { THEMES } from "../../db";
import { canonicalTimeZone } from "../../platform/time";

/** An IANA zone (`Europe/Lisbon`), validated with Intl and stored in its canonical spelling. */
export const TimeZone = z
  .string()
  .min(1)
  .max(64)
  .transform((zone, ctx) => {
    const canonical = canonicalTimeZone(zone);
    if (!canonical) {
      ctx.addIssue({ code: "custom", message: "an IANA time zone, e.g. Europe/Lisbon" });
      return z.NEVER;
    }
    return canonical;
  })
  .meta({ example: "Europe/Lisbon" });

/** A BCP 47 language tag (`pt-BR`), stored in its canonical spelling. */
export const LanguageTag = z
  .string()
  .min(2)
  .max(35)
  .transform((tag, ctx) => {
    try {
      const [canonical] = Intl.getCanonicalLocales(tag);
      if (canonical) return canonical;
    } catch {
      // falls through to the issue below
    }
    ctx.addIssue({ code: "custom", message: "a BCP 47 language tag, e.g. en or pt-BR" });
    return z.NEVER;
  })
  .meta({ example: "pt-BR" });

export const Settings = z
  .object({
    timezone: z.string().meta({ description: "IANA zone: the calendar day of check-ins and journal streaks" }),
    language: z.string(),
    theme: z.enum(THEMES),
    privateMode: z.boolean().meta({
      description:
        "Keeps the journal out of every insight and analytics: no insights are made while it is on, and entries " +
        "written or edited meanwhile stay out of them for good",
    }),
    emailDigests: z.boolean().meta({ description: "Weekly and monthly journal digests by email" }),
  })
  .meta({ id: "Settings" });
export type Settings = z.infer<typeof Settings>;

export const UpdateSettingsBody = z
  .object({
    timezone: TimeZone.optional(),
    language: LanguageTag.optional(),
    theme: z.enum(THEMES).optional(),
    privateMode: z.boolean().optional(),
    emailDigests: z.boolean().optional(),
  })
  .strict()
  .refine((body) => Object.keys(body).length > 0, "name at least one setting")
  .meta({ id: "UpdateSettings" });
export type UpdateSettingsBody = z.infer<typeof UpdateSettingsBody>;
