import { eraseDeletedAccounts } from "../features/users/erasure";
import type { Job } from "./types";

export const accountErasureJob: Job = {
  name: "account-erasure",
  description: "Erases personal data of accounts deleted longer ago than the grace period (GDPR).",
  run: eraseDeletedAccounts,
};
