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
  /** Path, query and header parameters, with their schemas (`$ref`s resolved). */
  parameters: Parameter[];
  /** The JSON request body's schema (`$ref`s resolved), or null without one. */
  body: JsonSchema | null;
  /** How a webhook's sender proves itself (`x-signed-by`), checked before the request is read; else null. */
  signedBy: string | null;
}

/** The parts of JSON Schema the generated OpenAPI document uses. */
export interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  items?: JsonSchema;
  enum?: unknown[];
  pattern?: string;
  format?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  maxItems?: number;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  example?: unknown;
  $ref?: string;
}

export interface Parameter {
  in: "path" | "query" | "header" | "cookie";
  name: string;
  required?: boolean;
  schema: JsonSchema;
}

interface RawOperation {
  security?: Record<string, string[]>[];
  "x-roles"?: string[];
  "x-signed-by"?: string;
  responses: Record<string, unknown>;
  parameters?: Parameter[];
  requestBody?: { content: Record<string, { schema: JsonSchema }> };
}

interface OpenApiDocument {
  paths: Record<string, Record<string, RawOperation>>;
  components?: { schemas?: Record<string, JsonSchema> };
}

/** `schema` with every `$ref` replaced by the component it names (the document has no recursive schemas). */
function resolved(schema: JsonSchema, doc: OpenApiDocument): JsonSchema {
  if (schema.$ref) {
    const name = schema.$ref.split("/").at(-1) ?? "";
    return resolved(doc.components?.schemas?.[name] ?? {}, doc);
  }
  const out: JsonSchema = { ...schema };
  if (schema.properties) {
    out.properties = Object.fromEntries(Object.entries(schema.properties).map(([k, v]) => [k, resolved(v, doc)]));
  }
  if (schema.items) out.items = resolved(schema.items, doc);
  if (schema.anyOf) out.anyOf = schema.anyOf.map((s) => resolved(s, doc));
  if (schema.oneOf) out.oneOf = schema.oneOf.map((s) => resolved(s, doc));
  return out;
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
            parameters: (op.parameters ?? []).map((p) => ({ ...p, schema: resolved(p.schema ?? {}, doc) })),
            body: op.requestBody?.content["application/json"]
              ? resolved(op.requestBody.content["application/json"].schema, doc)
              : null,
            signedBy: op["x-signed-by"] ?? null,
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
