import { expect } from "vitest";
import type { Problem } from "../../src/http/errors";
import type { ApiResponse } from "./api";

export type { Problem };

/** Asserts a problem+json answer with this status and code, and returns its body. */
export function expectProblem(res: ApiResponse, status: number, code: Problem["code"]): Problem {
  expect(res.status, res.text).toBe(status);
  expect(res.headers.get("content-type")).toContain("application/problem+json");
  const body = res.body as Problem;
  expect(body).toMatchObject({ status, code });
  return body;
}

/** The field paths a 400 names (`errors[].path`). */
export function fieldPaths(res: ApiResponse): string[] {
  return ((res.body as Problem).errors ?? []).map((e) => e.path);
}

/** A problem body without its per-request parts, to compare two answers for equality. */
export function withoutRequestId(res: ApiResponse): Omit<Problem, "requestId"> {
  const { requestId: _requestId, ...rest } = res.body as Problem;
  return rest;
}
