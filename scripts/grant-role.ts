// Grants a role to a user directly in MongoDB, through the Data API: how the first admin is made.
//   npm run grant-role -- <username> <user|creator|moderator|admin>
// Reads DATA_API_URL, DATA_API_KEY (and DATA_API_DATA_SOURCE, MONGO_DATABASE) from the environment or .dev.vars.
// After that, admins change roles with PUT /v1/admin/users/{id}/role (audited).
import { z } from "zod";
import { DataApiClient } from "../src/platform/mongo/client";
import { readDevVars } from "./local/dev-vars";

const Settings = z.object({
  DATA_API_URL: z.url(),
  DATA_API_KEY: z.string().min(1),
  DATA_API_DATA_SOURCE: z.string().default("circle"),
  MONGO_DATABASE: z.string().default("circle"),
});
const Role = z.enum(["user", "creator", "moderator", "admin"]);

export async function grantRole(
  settings: z.input<typeof Settings>,
  username: string,
  role: z.infer<typeof Role>,
): Promise<boolean> {
  const s = Settings.parse(settings);
  const client = new DataApiClient({
    url: s.DATA_API_URL,
    apiKey: s.DATA_API_KEY,
    dataSource: s.DATA_API_DATA_SOURCE,
    database: s.MONGO_DATABASE,
    timeoutMs: 10_000,
    readRetries: 1,
  });
  const now = new Date();
  const result = await client
    .collection("users")
    .updateOne({ usernameLower: username.toLowerCase(), deletedAt: null }, { $set: { role, updatedAt: now } });
  if (result.matchedCount === 1) {
    await client.collection("audit_logs").insertOne({
      userId: null,
      actorId: null,
      action: "role_changed",
      timestamp: now,
      ipHash: null,
      userAgent: "scripts/grant-role",
      requestId: null,
      dataCategory: "security_event",
      metadata: { username: username.toLowerCase(), to: role, via: "grant-role script" },
    });
  }
  return result.matchedCount === 1;
}

const isMain = import.meta.url === `file://${process.argv[1]}`;
if (isMain) {
  const [username, roleArg] = process.argv.slice(2);
  const role = Role.safeParse(roleArg);
  if (!username || !role.success) {
    console.error("usage: npm run grant-role -- <username> <user|creator|moderator|admin>");
    process.exit(2);
  }
  const ok = await grantRole({ ...readDevVars(), ...process.env } as z.input<typeof Settings>, username, role.data);
  console.log(ok ? `${username} is now ${role.data}` : `no active user named ${username}`);
  process.exit(ok ? 0 : 1);
}
