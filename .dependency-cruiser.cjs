/**
 * The architecture's map, enforced by `npm run lint` (dependency-cruiser). Layers, from the bottom:
 *
 *   platform/   wire protocols and pure helpers (Redis ops, Data API client, keys, time, crypto, tokens)
 *   db/         persisted document shapes, collection names, indexes, migrations
 *   config.ts   every setting, defined once          deps.ts   the per-isolate Deps
 *   core/       what services share without HTTP: ApiError, Viewer, job types, common schemas
 *   features/   one folder per capability: schema.ts + services (rules) + routes.ts (thin HTTP)
 *   http/       Hono middleware, route builders, problem responses
 *   scheduler/  cron wiring, the job runner and its admin routes
 *   app.ts worker.ts deno.ts   the entries
 *
 * Each layer imports only layers below it; services never reach Hono; nothing forms a cycle, between modules
 * or between feature folders (type-only imports included).
 */
const SERVICE = { path: "^src/features/", pathNot: "/routes\\.ts$" };

module.exports = {
  forbidden: [
    {
      name: "no-cycles",
      comment: "Modules form no import cycle (type-only imports count).",
      severity: "error",
      from: { path: "^src/" },
      to: { circular: true },
    },
    {
      name: "no-feature-cycles",
      comment: "Feature folders form no cycle either: every feature builds only on features below it.",
      severity: "error",
      scope: "folder",
      from: { path: "^src/features/[^/]+$" },
      to: { path: "^src/features/[^/]+$", circular: true },
    },
    {
      name: "platform-is-the-bottom",
      comment: "platform/ knows wire protocols and imports nothing of ours above it.",
      severity: "error",
      from: { path: "^src/platform/" },
      to: { path: "^src/", pathNot: "^src/(platform/|types/)" },
    },
    {
      name: "db-below-features",
      comment: "db/ holds the persisted shapes; it never imports features, HTTP, the scheduler or the entries.",
      severity: "error",
      from: { path: "^src/db/" },
      to: { path: "^src/(features|http|scheduler|core)/|^src/(app|worker|deno|deps|config)\\.ts$" },
    },
    {
      name: "config-below-services",
      comment: "config.ts and deps.ts sit under everything that uses them.",
      severity: "error",
      from: { path: "^src/(config|deps)\\.ts$" },
      to: { path: "^src/(features|http|scheduler|core)/|^src/(app|worker|deno)\\.ts$" },
    },
    {
      name: "core-below-features",
      comment: "core/ is shared by services and HTTP alike, so it imports neither.",
      severity: "error",
      from: { path: "^src/core/" },
      to: { path: "^src/(features|http|scheduler)/|^src/(app|worker|deno)\\.ts$" },
    },
    {
      name: "services-never-reach-hono",
      comment: "Services hold the rules: no route module, no http/ module, and nothing that imports Hono.",
      severity: "error",
      from: SERVICE,
      to: { path: "^node_modules/(hono|@hono)/", reachable: true },
    },
    {
      name: "services-import-no-http",
      comment: "Services import no route module and nothing from http/ (errors and the viewer live in core/).",
      severity: "error",
      from: SERVICE,
      to: { path: "^src/http/|^src/features/[^/]+/routes\\.ts$" },
    },
    {
      name: "features-below-scheduler",
      comment: "Features define their jobs; the scheduler and the entries wire them.",
      severity: "error",
      from: { path: "^src/features/" },
      to: { path: "^src/scheduler/|^src/(app|worker|deno)\\.ts$" },
    },
    {
      name: "http-below-features",
      comment: "http/ is cross-cutting: it knows no feature.",
      severity: "error",
      from: { path: "^src/http/" },
      to: { path: "^src/(features|scheduler)/|^src/(app|worker|deno)\\.ts$" },
    },
    {
      name: "worker-stays-small",
      comment:
        "bson and @clickhouse/client-web cannot be tree-shaken and took a fifth of the Worker's gzip budget: the Worker " +
        "has its own EJSON and ObjectId (platform/ejson.ts, object-id.ts) and ClickHouse client (platform/clickhouse.ts). " +
        "The gateway and the tests still use both packages. @upstash/redis (76 KiB minified) gave way to a " +
        "pipeline-only client (platform/upstash.ts); the local Upstash server's tests still speak to the SDK.",
      severity: "error",
      from: { path: "^src/" },
      to: { path: "(^|/)node_modules/(bson|@clickhouse/client-web|@upstash/redis)/" },
    },
  ],
  options: {
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    doNotFollow: { path: "node_modules" },
    includeOnly: "^(src|node_modules)/",
    exclude: { path: "\\.d\\.ts$" },
    combinedDependencies: true,
  },
};
