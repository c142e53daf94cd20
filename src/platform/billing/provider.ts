/**
 * An outside provider (Play Developer API, Google's OAuth endpoint, Stripe) could not answer usefully right now:
 * unreachable, timed out, 5xx or 429, or refusing our credentials. The caller answers 503 so the provider's
 * own retry (Pub/Sub redelivery, Stripe's webhook retries) or the app tries again later; nothing is written.
 */
export class ProviderUnavailableError extends Error {
  override name = "ProviderUnavailableError";
  constructor(
    readonly provider: "google_play" | "google_oauth" | "stripe",
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${provider} unavailable: ${message}`, options);
  }
}

/** fetch with a deadline; network failures and timeouts become ProviderUnavailableError. */
export async function providerFetch(
  provider: ProviderUnavailableError["provider"],
  url: string,
  init: RequestInit,
  timeoutMs: number,
): Promise<Response> {
  try {
    return await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
  } catch (error) {
    throw new ProviderUnavailableError(provider, error instanceof Error ? error.message : String(error), {
      cause: error,
    });
  }
}

/** Reads a JSON answer; a body that is not JSON is the provider misbehaving (unavailable, retry later). */
export async function providerJson(
  provider: ProviderUnavailableError["provider"],
  response: Response,
): Promise<unknown> {
  const text = await response.text();
  try {
    return text ? (JSON.parse(text) as unknown) : {};
  } catch {
    throw new ProviderUnavailableError(provider, `${response.status}: the answer is not JSON`);
  }
}
