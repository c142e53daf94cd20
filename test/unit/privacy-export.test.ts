import { describe, expect, it } from "vitest";
import { type CollectionKey, collections } from "../../src/db/collections";
import { exportedCollections, NOT_EXPORTED } from "../../src/features/privacy/export";

describe("GET /v1/me/export coverage", () => {
  it("reads every collection, or says why one holds nothing about a person", () => {
    const exported = new Set(exportedCollections());
    const undecided = (Object.keys(collections) as CollectionKey[]).filter(
      (key) => !exported.has(key) && !NOT_EXPORTED[key],
    );
    expect(undecided).toEqual([]);
  });

  it("does not both export a collection and call it empty of personal data", () => {
    const both = exportedCollections().filter((key) => NOT_EXPORTED[key]);
    expect(both).toEqual([]);
  });
});
