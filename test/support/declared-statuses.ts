import { afterAll, expect } from "vitest";
import { observedCalls } from "./api";
import { operationFor, operations } from "./spec";

// Every status the suite sees must be one its operation declares in /openapi.json: a route that answers
// something its contract does not list (a 500, an undocumented 409, a 413 nobody declared) fails the file
// that saw it. Requests to paths the API does not serve (404 routing, 405) are the router's, not an operation's.
afterAll(async () => {
  const ops = await operations();
  const undeclared = new Map<string, Set<number>>();
  for (const seen of observedCalls) {
    const op = operationFor(ops, seen.method, seen.path);
    if (!op || op.statuses.has(seen.status)) continue;
    const name = `${op.method} ${op.path}`;
    const statuses = undeclared.get(name) ?? new Set<number>();
    statuses.add(seen.status);
    undeclared.set(name, statuses);
  }
  const report = [...undeclared].map(([name, statuses]) => `${name} answered ${[...statuses].join(", ")}`);
  expect(report, "statuses answered but not declared in /openapi.json").toEqual([]);
});
