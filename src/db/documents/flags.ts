import type { ObjectId } from "../../platform/ids";

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
  variants: { name: string; weight: number; config: Record<string, unknown> }[];
  createdAt: Date;
  updatedAt: Date;
}
