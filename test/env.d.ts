// The test Worker's bindings are the settings from test/setup/plan.ts (all strings).
declare namespace Cloudflare {
  interface Env {
    [setting: string]: string;
  }
}

declare module "*?raw" {
  const text: string;
  export default text;
}
