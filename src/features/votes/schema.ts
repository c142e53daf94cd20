import { z } from "zod";

export const VoteResult = z.object({ voted: z.literal(true), voteCount: z.number().int() }).meta({ id: "VoteResult" });
export type VoteResult = z.infer<typeof VoteResult>;
