import { expect } from "vitest";

/**
 * Asserts that every item passes `predicate` and that there is at least one item: `list.every(…)` alone
 * passes on an empty list, which is how a broken query hides. Failing items are shown, not just `false`.
 */
export function expectEvery<T>(list: readonly T[], predicate: (item: T) => boolean, what = "items"): void {
  expect(list.length, `expected some ${what} to check`).toBeGreaterThan(0);
  expect(
    list.filter((item) => !predicate(item)),
    `${what} that fail the check`,
  ).toEqual([]);
}
