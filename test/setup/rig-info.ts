/** What the fault control server tells a test about its rig (shared by test/setup/faults.ts and test/support/faults.ts). */
export interface RigInfo {
  id: string;
  upstashUrl: string;
  upstashToken: string;
  /** The rig's own gateway (an empty embedded engine), when asked for. */
  gateway?: { url: string; apiKey: string };
}
