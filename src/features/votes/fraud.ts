/**
 * Vote fraud score in [0, 1], computed at vote time from the seed's fraud sets: how many accounts voted from
 * this IP today (`fraud:ip:{ipHash}:{date}`) and from this device in the last 30 days
 * (`fraud:device:{deviceId}`), and the voter's trust score. Each signal grows linearly once it exceeds
 * what one household or one shared phone explains, and they combine as independent probabilities.
 */
export interface FraudSignals {
  accountsOnIp: number;
  accountsOnDevice: number;
  trustScore: number;
  hasDevice: boolean;
}

export interface FraudRules {
  accountsPerIp: number;
  accountsPerDevice: number;
}

export function voteFraudScore(s: FraudSignals, rules: FraudRules): number {
  const ip = Math.min(1, Math.max(0, s.accountsOnIp - rules.accountsPerIp) / (rules.accountsPerIp * 2));
  const device = Math.min(1, Math.max(0, s.accountsOnDevice - rules.accountsPerDevice) / rules.accountsPerDevice);
  // Low trust (under 50) adds up to 0.3; a missing device id adds a little (scripts often send none).
  const trust = Math.max(0, (50 - s.trustScore) / 50) * 0.3;
  const anonymousDevice = s.hasDevice ? 0 : 0.1;
  const clean = (1 - ip) * (1 - device) * (1 - trust) * (1 - anonymousDevice);
  return Math.round((1 - clean) * 1000) / 1000;
}
