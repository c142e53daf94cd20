import { accrueTrust } from "../features/moderation/trust-accrual";
import type { Job } from "./types";

export const trustAccrualJob: Job = {
  name: "trust-accrual",
  description: "Raises the trust score of active accounts without recent sanctions a little, once a day.",
  run: accrueTrust,
};
