import { z } from "zod";

export const DeletionAccepted = z
  .object({ erasureAfter: z.string().meta({ description: "When the erasure job removes personal data" }) })
  .meta({ id: "DeletionAccepted" });
export type DeletionAccepted = z.infer<typeof DeletionAccepted>;

export const DataExport = z.record(z.string(), z.unknown()).meta({ id: "DataExport" });
