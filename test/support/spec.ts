import { exports } from "cloudflare:workers";

/** One operation of the served OpenAPI document, as the route-security and declared-status checks read it. */
export interface Operation {
  method: string;
  path: string;
  /** `bearer` or `workerToken` when the operation declares it; `optional` when `{}` is an alternative. */
  security: { scheme: "bearer" | "workerToken"; optional: boolean } | null;
  roles: string[];
  statuses: Set<number>;
  /** The path template as a regex, and how many literal segments it has (more literal = more specific). */
  pattern: RegExp;
  literals: number;
}

interface OpenApiDocument {
  paths: Record<
    string,
    Record<string, { security?: Record<string, string[]>[]; "x-roles"?: string[]; responses: Record<string, unknown> }>
  >;
}

type Fetcher = { fetch(request: Request): Promise<Response> };
const worker = (exports as unknown as { default: Fetcher }).default;

let cached: Promise<Operation[]> | undefined;

/** Every operation of `/openapi.json`, read once per test file through the Worker. */
export function operations(): Promise<Operation[]> {
  cached ??= worker
    .fetch(new Request("http://circle.test/openapi.json"))
    .then((r) => r.json() as Promise<OpenApiDocument>)
    .then((doc) =>
      Object.entries(doc.paths).flatMap(([path, methods]) =>
        Object.entries(methods).map(([method, op]): Operation => {
          const schemes = op.security ?? [];
          const named = schemes.flatMap((s) => Object.keys(s));
          const scheme = named.includes("bearer") ? "bearer" : named.includes("workerToken") ? "workerToken" : null;
          const segments = path.split("/").filter(Boolean);
          return {
            method: method.toUpperCase(),
            path,
            security: scheme ? { scheme, optional: schemes.some((s) => Object.keys(s).length === 0) } : null,
            roles: op["x-roles"] ?? [],
            statuses: new Set(Object.keys(op.responses).map(Number)),
            pattern: new RegExp(`^${path.replace(/\{[^}]+\}/g, "[^/]+")}$`),
            literals: segments.filter((s) => !s.startsWith("{")).length,
          };
        }),
      ),
    );
  return cached;
}

/** The operation a request hit, by method and the most specific matching path template. */
export function operationFor(ops: Operation[], method: string, path: string): Operation | undefined {
  const pathname = path.split("?")[0] ?? path;
  return ops
    .filter((op) => op.method === method.toUpperCase() && op.pattern.test(pathname))
    .sort((a, b) => b.literals - a.literals)[0];
}
