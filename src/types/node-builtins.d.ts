// Minimal declarations for the Node built-ins the Worker uses through `nodejs_compat` (also on Deno).
declare module "node:async_hooks" {
  export class AsyncLocalStorage<T> {
    getStore(): T | undefined;
    run<R>(store: T, callback: () => R): R;
  }
}
