import { AsyncLocalStorage } from "node:async_hooks";

/**
 * Work that is not the answer (mail and push delivery) runs after the response: a request (or job run) holds a
 * queue, code anywhere below it adds tasks with `afterResponse`, and the entry hands the queue to the runtime
 * once the answer is ready (`ctx.waitUntil` on Workers, a plain background promise on Deno, awaited at the end
 * of a job run). Tasks must record what they owe durably before they are queued: a queue that never runs
 * (the isolate died) only delays them until a sweep job finds the record.
 */
export type BackgroundTask = () => Promise<void>;

export interface BackgroundQueue {
  tasks: BackgroundTask[];
  /** The request that holds the queue (its X-Request-Id), so durable records of owed work can name it. */
  requestId?: string;
}

const scope = new AsyncLocalStorage<BackgroundQueue>();

export function newBackgroundQueue(requestId?: string): BackgroundQueue {
  return requestId ? { tasks: [], requestId } : { tasks: [] };
}

/** The id of the request whose queue is current (undefined in jobs and outside a request). */
export function currentRequestId(): string | undefined {
  return scope.getStore()?.requestId;
}

/** Runs `fn` with `queue` as the place `afterResponse` puts tasks. */
export function withBackgroundQueue<T>(queue: BackgroundQueue, fn: () => T): T {
  return scope.run(queue, fn);
}

/**
 * Queues `task` to run after the current request's answer (or at the end of the current job run). Outside
 * either, it starts at once, unawaited. Tasks handle and log their own errors; a rejection is dropped.
 */
export function afterResponse(task: BackgroundTask): void {
  const queue = scope.getStore();
  if (queue) queue.tasks.push(task);
  else void task().catch(() => {});
}

/** Runs every queued task (and those they queue in turn) until the queue is empty. */
export async function drainBackground(queue: BackgroundQueue): Promise<void> {
  while (queue.tasks.length > 0) {
    const batch = queue.tasks.splice(0);
    await Promise.allSettled(batch.map((task) => withBackgroundQueue(queue, task)));
  }
}

/** `fn` over `items` with at most `limit` calls in flight (outside providers: no burst of hundreds at once). */
export async function mapWithLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
