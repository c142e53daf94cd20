/** What the outside-provider clients (resend.ts, fcm.ts) share: their error record and response helpers. */

/** A provider's refusal as kept for debugging: HTTP status (0: unreachable), its error name and message. */
export interface ProviderError {
  status: number;
  name: string;
  message: string;
}

/** Retry-After in seconds (delta-seconds only; an HTTP date is rare from these APIs and ignored). */
export function retryAfter(header: string | null): number | null {
  if (!header || !/^\d+$/.test(header.trim())) return null;
  return Number(header.trim());
}

export function parseObject(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === "object" && value !== null ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

export function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/** Provider messages are kept in documents and logs: bounded. */
export const MAX_ERROR_MESSAGE = 500;
