import type { BulkWriteResult, Document, WriteErrorDetail } from "./backends/types";

/** The `error_code` values of the Data API error body `{ error, error_code, ...extra }`. */
export type GatewayErrorCode =
  | "Unauthorized"
  | "Forbidden"
  | "InvalidParameter"
  | "ActionNotFound"
  | "ForbiddenOperator"
  | "PayloadTooLarge"
  | "DuplicateKey"
  | "IndexConflict"
  | "ExecutionTimeout"
  | "TransactionsUnsupported"
  | "PreconditionFailed"
  | "Unavailable"
  | "InternalError";

const STATUS: Record<GatewayErrorCode, number> = {
  Unauthorized: 401,
  Forbidden: 403,
  InvalidParameter: 400,
  ActionNotFound: 404,
  ForbiddenOperator: 400,
  PayloadTooLarge: 413,
  DuplicateKey: 409,
  IndexConflict: 409,
  // 504, not 500: the gateway's upstream (the store) ran out of time; clients treat it as transient.
  ExecutionTimeout: 504,
  // 501, not 503: the deployment (a standalone MongoDB) lacks the feature; retrying cannot help.
  TransactionsUnsupported: 501,
  // A batch step marked `expect: "match"` matched nothing: the batch stopped there (nothing committed in a transaction).
  PreconditionFailed: 412,
  Unavailable: 503,
  InternalError: 500,
};

/** An error that becomes a Data API error response. `extra` is merged into the body (never a stack trace). */
export class GatewayError extends Error {
  override name = "GatewayError";
  readonly status: number;

  constructor(
    readonly code: GatewayErrorCode,
    message: string,
    readonly extra: Document = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.status = STATUS[code];
  }

  toBody(): Document {
    return { error: this.message, error_code: this.code, ...this.extra };
  }
}

export function invalidParameter(message: string): GatewayError {
  return new GatewayError("InvalidParameter", message);
}

export interface DuplicateKeyDetails {
  message: string;
  keyPattern?: Document;
  keyValue?: Document;
  /** insertMany / bulkWrite only: every failed operation, and what did get written. */
  writeErrors?: WriteErrorDetail[];
  result?: Partial<BulkWriteResult> & { insertedIds?: unknown };
}

export const DUPLICATE_KEY_CODE = 11000;

/** MongoDB error 11000 as a Data API error: 409 with the colliding index's key pattern and value. */
export function duplicateKeyError(details: DuplicateKeyDetails): GatewayError {
  const extra: Document = {};
  if (details.keyPattern) extra.keyPattern = details.keyPattern;
  if (details.keyValue) extra.keyValue = details.keyValue;
  if (details.writeErrors) extra.writeErrors = details.writeErrors;
  if (details.result) extra.result = details.result;
  return new GatewayError("DuplicateKey", details.message, extra);
}

/**
 * The error answer of a batch (insertMany / bulkWrite) with failed operations: DuplicateKey (409) when every
 * failure is a duplicate key (code 11000), InvalidParameter (400) otherwise; both carry `writeErrors` and the
 * partial `result` (what did get written).
 */
export function bulkWriteError(
  writeErrors: WriteErrorDetail[],
  result: Partial<BulkWriteResult> & { insertedIds?: unknown },
): GatewayError {
  const first = writeErrors[0];
  const message = first?.errmsg ?? "write failed";
  if (first && writeErrors.every((error) => error.code === DUPLICATE_KEY_CODE)) {
    return duplicateKeyError({
      message,
      ...(first.keyPattern ? { keyPattern: first.keyPattern } : {}),
      ...(first.keyValue ? { keyValue: first.keyValue } : {}),
      writeErrors,
      result,
    });
  }
  return new GatewayError("InvalidParameter", message, { writeErrors, result });
}

export function isGatewayError(error: unknown): error is GatewayError {
  return error instanceof GatewayError;
}
