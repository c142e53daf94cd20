import { type ApiResponse, call, type RequestOptions } from "./api";
import { TEST_EMAIL_DOMAIN } from "./users";

interface Exchange {
  request: string;
  /** The caller's own email (lower-cased): the only address this response may contain. */
  ownEmail: string | null;
  text: string;
}

const TEST_EMAIL = new RegExp(`[A-Za-z0-9._%+-]+@${TEST_EMAIL_DOMAIN.replace(/\./g, "\\.")}`, "gi");

/** Every test-user email address in a text, lower-cased. */
export function emailsIn(text: string): string[] {
  return [...text.matchAll(TEST_EMAIL)].map((m) => m[0].toLowerCase());
}

/**
 * Calls the API on behalf of a known caller and remembers which email each response may contain (the
 * caller's own), so a test can check that no response ever carries another user's address.
 */
export function emailRecorder() {
  const exchanges: Exchange[] = [];
  return {
    exchanges,
    /** Calls as the owner of `ownEmail` (null: an anonymous caller, who may see no email at all). */
    async as<T = unknown>(
      ownEmail: string | null,
      method: string,
      path: string,
      options: RequestOptions = {},
    ): Promise<ApiResponse<T>> {
      const res = await call<T>(method, path, options);
      exchanges.push({ request: `${method} ${path}`, ownEmail: ownEmail?.toLowerCase() ?? null, text: res.text });
      return res;
    },
    /** Responses that contain an email address other than their caller's own. */
    leaks(): { request: string; emails: string[] }[] {
      return exchanges.flatMap((e) => {
        const foreign = emailsIn(e.text).filter((email) => email !== e.ownEmail);
        return foreign.length ? [{ request: e.request, emails: foreign }] : [];
      });
    },
  };
}
