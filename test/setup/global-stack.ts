import { type RunningStack, startLocalStack } from "../../scripts/local/stack";
import { runMigrations } from "../../scripts/migrate";
import { currentTestStack } from "./plan";

let stack: RunningStack | undefined;

/** Starts the real local stack once for the whole test run and applies migrations. */
export async function setup(): Promise<void> {
  const { plan } = currentTestStack();
  stack = await startLocalStack(plan);
  await runMigrations({
    DATA_API_URL: stack.workerEnv.DATA_API_URL!,
    DATA_API_KEY: plan.secrets.dataApiKey,
    DATA_API_DATA_SOURCE: "circle",
    MONGO_DATABASE: plan.database,
    CLICKHOUSE_URL: stack.workerEnv.CLICKHOUSE_URL!,
    CLICKHOUSE_USER: "default",
    CLICKHOUSE_PASSWORD: plan.secrets.clickhousePassword,
    CLICKHOUSE_DATABASE: "default",
  });
}

export async function teardown(): Promise<void> {
  await stack?.stop();
}
