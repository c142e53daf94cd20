import type { ObjectId } from "../../platform/ids";
import type { StoredJson } from "../../platform/mongo/client-json";

/**
 * A variant as stored. Its `config` is an admin's free-form JSON, kept as JSON text (`configJson`, see
 * platform/mongo/client-json.ts) so the Data API never reads a key of it as EJSON or an operator; flags written
 * before that hold `config` as a document, which is still read.
 */
export interface StoredVariant {
  name: string;
  weight: number;
  configJson?: StoredJson;
  config?: Record<string, unknown>;
}

/** `feature_flags` (seed 000). */
export interface FeatureFlagDoc {
  _id: ObjectId;
  name: string;
  description: string;
  enabled: boolean;
  rolloutPercentage: number;
  targetTiers: string[];
  targetUserIds: ObjectId[];
  isExperiment: boolean;
  variants: StoredVariant[];
  createdAt: Date;
  updatedAt: Date;
}
