// Applies MongoDB indexes and ClickHouse DDL: `npm run migrate`. Reads the same settings as the API
// (environment, or .dev.vars when present); only the Data API and ClickHouse ones are needed.
import { z } from "zod";
import { migrate } from "../src/db/migrate";
import { createClickHouse } from "../src/platform/clickhouse";
import { DataApiClient } from "../src/platform/mongo/client";
import { readDevVars } from "./local/dev-vars";

const Settings = z.object({
  DATA_API_URL: z.url(),
  DATA_API_KEY: z.string().min(1),
  DATA_API_DATA_SOURCE: z.string().default("circle"),
  MONGO_DATABASE: z.string().default("circle"),
  CLICKHOUSE_URL: z.url(),
  CLICKHOUSE_USER: z.string().default("default"),
  CLICKHOUSE_PASSWORD: z.string().default(""),
  CLICKHOUSE_DATABASE: z.string().default("default"),
});

export type MigrationSettings = z.infer<typeof Settings>;

export async function runMigrations(settings: MigrationSettings) {
  const mongo = new DataApiClient({
    url: settings.DATA_API_URL,
    apiKey: settings.DATA_API_KEY,
    dataSource: settings.DATA_API_DATA_SOURCE,
    database: settings.MONGO_DATABASE,
    timeoutMs: 30_000,
    readRetries: 2,
  });
  const clickhouse = createClickHouse({
    url: settings.CLICKHOUSE_URL,
    user: settings.CLICKHOUSE_USER,
    password: settings.CLICKHOUSE_PASSWORD,
    database: settings.CLICKHOUSE_DATABASE,
    timeoutMs: 30_000,
  });
  try {
    return await migrate(mongo, clickhouse);
  } finally {
    await clickhouse.close();
  }
}

const isMain = import.meta.url === `file://${process.argv[1]}`;
if (isMain) {
  const parsed = Settings.safeParse({ ...readDevVars(), ...process.env });
  if (!parsed.success) {
    console.error(`migrate: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
    process.exit(1);
  }
  const report = await runMigrations(parsed.data);
  console.log(JSON.stringify({ msg: "migrations applied", ...report }));
}
