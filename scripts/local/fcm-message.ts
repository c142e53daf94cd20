import { randomBytes } from "node:crypto";
import { isObject, type Json, type JsonObject } from "./standin-http";

/**
 * FCM HTTP v1 `SendMessageRequest` checking, after the Message resource in
 * https://firebase.google.com/docs/reference/fcm/rest/v1/projects.messages: protobuf JSON rules (snake_case
 * or lowerCamelCase names, unknown names refused, `null` meaning "not set", every map value a string),
 * exactly one target, and FCM's own argument checks. Problems come back the way Google reports them:
 * "Invalid value at 'message.data[0].value' (TYPE_STRING), 12" with a google.rpc.BadRequest violation.
 */

type FieldSpec =
  | { kind: "string" | "bool" | "int32" | "float" | "duration" | "timestamp" | "map" | "struct" }
  | { kind: "enum"; type: string; values: readonly string[] }
  | { kind: "repeated"; of: FieldSpec }
  | { kind: "message"; type: string; fields: Record<string, FieldSpec> };

const str = { kind: "string" } as const;
const bool = { kind: "bool" } as const;
const int32 = { kind: "int32" } as const;
const float = { kind: "float" } as const;
const duration = { kind: "duration" } as const;
const timestamp = { kind: "timestamp" } as const;
const map = { kind: "map" } as const;
const struct = { kind: "struct" } as const;
const repeated = (of: FieldSpec) => ({ kind: "repeated", of }) as const;
const fcm = (name: string, fields: Record<string, FieldSpec>) =>
  ({ kind: "message", type: `type.googleapis.com/google.firebase.fcm.v1.${name}`, fields }) as const;
const enumOf = (name: string, values: readonly string[]) =>
  ({ kind: "enum", type: `type.googleapis.com/google.firebase.fcm.v1.${name}`, values }) as const;

const COLOR: FieldSpec = {
  kind: "message",
  type: "type.googleapis.com/google.type.Color",
  fields: { red: float, green: float, blue: float, alpha: float },
};

const ANDROID_NOTIFICATION = fcm("AndroidNotification", {
  title: str,
  body: str,
  icon: str,
  color: str,
  sound: str,
  tag: str,
  click_action: str,
  body_loc_key: str,
  body_loc_args: repeated(str),
  title_loc_key: str,
  title_loc_args: repeated(str),
  channel_id: str,
  ticker: str,
  sticky: bool,
  event_time: timestamp,
  local_only: bool,
  notification_priority: enumOf("AndroidNotification.NotificationPriority", [
    "PRIORITY_UNSPECIFIED",
    "PRIORITY_MIN",
    "PRIORITY_LOW",
    "PRIORITY_DEFAULT",
    "PRIORITY_HIGH",
    "PRIORITY_MAX",
  ]),
  default_sound: bool,
  default_vibrate_timings: bool,
  default_light_settings: bool,
  vibrate_timings: repeated(duration),
  visibility: enumOf("AndroidNotification.Visibility", ["VISIBILITY_UNSPECIFIED", "PRIVATE", "PUBLIC", "SECRET"]),
  notification_count: int32,
  light_settings: fcm("LightSettings", { color: COLOR, light_on_duration: duration, light_off_duration: duration }),
  image: str,
  bypass_proxy_notification: bool,
  proxy: enumOf("AndroidNotification.Proxy", ["PROXY_UNSPECIFIED", "ALLOW", "DENY", "IF_PRIORITY_LOWERED"]),
});

const MESSAGE = fcm("Message", {
  name: str,
  data: map,
  notification: fcm("Notification", { title: str, body: str, image: str }),
  android: fcm("AndroidConfig", {
    collapse_key: str,
    priority: enumOf("AndroidMessagePriority", ["NORMAL", "HIGH"]),
    ttl: duration,
    restricted_package_name: str,
    data: map,
    notification: ANDROID_NOTIFICATION,
    fcm_options: fcm("AndroidFcmOptions", { analytics_label: str }),
    direct_boot_ok: bool,
    bandwidth_constrained_ok: bool,
    restricted_satellite_ok: bool,
  }),
  webpush: fcm("WebpushConfig", {
    headers: map,
    data: map,
    notification: struct,
    fcm_options: fcm("WebpushFcmOptions", { link: str, analytics_label: str }),
  }),
  apns: fcm("ApnsConfig", {
    headers: map,
    payload: struct,
    fcm_options: fcm("ApnsFcmOptions", { analytics_label: str, image: str }),
    live_activity_token: str,
  }),
  fcm_options: fcm("FcmOptions", { analytics_label: str }),
  token: str,
  topic: str,
  condition: str,
  fid: str,
});

const SEND_REQUEST: FieldSpec = {
  kind: "message",
  type: "type.googleapis.com/google.firebase.fcm.v1.SendMessageRequest",
  fields: { validate_only: bool, message: MESSAGE },
};

/** The `target` oneof of Message, in the order the reference lists it. */
const TARGETS = ["token", "topic", "condition", "fid"] as const;
export type TargetKind = (typeof TARGETS)[number];
export interface Target {
  kind: TargetKind;
  value: string;
}

export interface FieldViolation {
  field: string;
  description: string;
}

/** The parts of a checked message the device model reads (all names snake_case after checking). */
export interface FcmMessage {
  data?: Record<string, string>;
  notification?: { title?: string; body?: string; image?: string };
  android?: {
    collapse_key?: string;
    data?: Record<string, string>;
    notification?: { title?: string; body?: string; tag?: string; notification_count?: number };
  };
  apns?: { headers?: Record<string, string>; payload?: JsonObject };
  webpush?: { headers?: Record<string, string>; data?: Record<string, string>; notification?: JsonObject };
  token?: string;
  topic?: string;
  condition?: string;
  fid?: string;
}

export type SendRequestCheck =
  | { ok: true; message: FcmMessage; raw: JsonObject; target: Target; validateOnly: boolean }
  /** `fcmError`: FCM adds its FcmError detail (errorCode INVALID_ARGUMENT) to the response. */
  | { ok: false; message: string; violations: FieldViolation[]; fcmError: boolean };

// Registration tokens are long base64url-like strings, usually "<instance id>:<key>" (about 150+ chars). The
// error reference says to "check the format … do not truncate the token or add additional characters"; this
// stand-in calls a token malformed when it is shorter than 64 characters, longer than 4096, or has anything
// besides letters, digits, '-', '_' and ':' (so truncated tokens, padding, quotes or spaces are caught).
const REGISTRATION_TOKEN = /^[A-Za-z0-9_:-]{64,4096}$/;
// Firebase installation IDs: 22 base64url characters.
const INSTALLATION_ID = /^[A-Za-z0-9_-]{22}$/;
// "Topic name … must match the regular expression [a-zA-Z0-9-_.~%]+" (send-to-topic guide).
const TOPIC = /^[a-zA-Z0-9\-_.~%]{1,900}$/;
// "You can include up to five topics in your conditional expression."
const MAX_CONDITION_TOPICS = 5;
// ErrorCode INVALID_ARGUMENT: payload data at most 4096 bytes (2048 for topic messages), keys and values.
const MAX_DATA_BYTES = 4096;
const MAX_TOPIC_DATA_BYTES = 2048;
const RESERVED_DATA_KEY = /^(from|message_type|google.*|gcm.*)$/;

const INVALID_TOKEN = "The registration token is not a valid FCM registration token";
const INVALID_ARGUMENT = "Request contains an invalid argument.";

/** A token this stand-in accepts (shape of a real one: 22-char instance id, ':', APA91b… key). */
export function fakeRegistrationToken(): string {
  return `${randomBytes(16).toString("base64url").slice(0, 22)}:APA91b${randomBytes(100).toString("base64url")}`;
}

export function checkSendRequest(body: Json | undefined): SendRequestCheck {
  if (body === undefined) {
    return { ok: false, message: "Invalid JSON payload received. Unexpected token.", violations: [], fcmError: false };
  }
  const violations: FieldViolation[] = [];
  const normalized = normalize(body, SEND_REQUEST, "", violations) as JsonObject | undefined;
  if (violations.length > 0 || !normalized) return invalid(violations, false);

  const raw = isObject(normalized.message) ? normalized.message : {};
  const set = TARGETS.filter((t) => raw[t] !== undefined);
  if (set.length === 0) {
    return invalid([{ field: "message", description: "Recipient of the message is not set." }], true);
  }
  if (set.length > 1) {
    const description = `Invalid JSON payload received. Oneof field 'target' is already set. Cannot set '${set[1]}'`;
    return invalid([{ field: "message", description }], false);
  }
  const kind = set[0] as TargetKind;
  const target: Target = { kind, value: raw[kind] as string };
  const problem = targetProblem(target) ?? payloadProblem(raw as FcmMessage, kind);
  if (problem) return problem;
  return { ok: true, message: raw as FcmMessage, raw, target, validateOnly: normalized.validate_only === true };
}

export function isWellFormedRegistrationToken(token: string): boolean {
  return REGISTRATION_TOKEN.test(token);
}

function invalid(violations: FieldViolation[], fcmError: boolean): SendRequestCheck {
  return { ok: false, message: violations.map((v) => v.description).join("\n"), violations, fcmError };
}

function argumentProblem(field: string, description: string, message = INVALID_ARGUMENT): SendRequestCheck {
  return { ok: false, message, violations: [{ field, description }], fcmError: true };
}

function targetProblem(target: Target): SendRequestCheck | undefined {
  const field = `message.${target.kind}`;
  switch (target.kind) {
    case "token":
      // Exactly the documented body: FcmError INVALID_ARGUMENT and no field violation.
      return REGISTRATION_TOKEN.test(target.value)
        ? undefined
        : { ok: false, message: INVALID_TOKEN, violations: [], fcmError: true };
    case "fid":
      return INSTALLATION_ID.test(target.value)
        ? undefined
        : argumentProblem(field, "Invalid Firebase installation ID.", "Invalid Firebase installation ID.");
    case "topic":
      // The reference: 'Note: "/topics/" prefix should not be provided.'
      return TOPIC.test(target.value) ? undefined : argumentProblem(field, `Invalid topic name: "${target.value}"`);
    case "condition": {
      const topics = [...target.value.matchAll(/'([^']*)'\s+in\s+topics/g)].map((m) => m[1] ?? "");
      const valid = topics.length > 0 && topics.length <= MAX_CONDITION_TOPICS && topics.every((t) => TOPIC.test(t));
      return valid ? undefined : argumentProblem(field, "Invalid condition expression provided.");
    }
  }
}

function payloadProblem(message: FcmMessage, kind: TargetKind): SendRequestCheck | undefined {
  for (const [field, data] of [
    ["message.data", message.data],
    ["message.android.data", message.android?.data],
  ] as const) {
    const reserved = Object.keys(data ?? {}).find((key) => RESERVED_DATA_KEY.test(key));
    if (reserved !== undefined) return argumentProblem(field, `Invalid data payload key: "${reserved}" is reserved.`);
  }
  const limit = kind === "topic" ? MAX_TOPIC_DATA_BYTES : MAX_DATA_BYTES;
  const size = Object.entries(message.data ?? {}).reduce(
    (sum, [key, value]) => sum + Buffer.byteLength(key) + Buffer.byteLength(value),
    0,
  );
  if (size > limit) return argumentProblem("message.data", `Message payload data is ${size} bytes; at most ${limit}.`);
  return undefined;
}

function snakeCase(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

function typeName(spec: FieldSpec): string {
  switch (spec.kind) {
    case "string":
      return "TYPE_STRING";
    case "bool":
      return "TYPE_BOOL";
    case "int32":
      return "TYPE_INT32";
    case "float":
      return "TYPE_FLOAT";
    case "duration":
      return "type.googleapis.com/google.protobuf.Duration";
    case "timestamp":
      return "type.googleapis.com/google.protobuf.Timestamp";
    case "struct":
      return "type.googleapis.com/google.protobuf.Struct";
    case "map":
      return "TYPE_STRING";
    case "repeated":
      return typeName(spec.of);
    case "enum":
    case "message":
      return spec.type;
  }
}

function badValue(path: string, spec: FieldSpec, value: Json, violations: FieldViolation[]): undefined {
  violations.push({
    field: path,
    description: `Invalid value at '${path}' (${typeName(spec)}), ${JSON.stringify(value)}`,
  });
  return undefined;
}

/** Checks `value` against `spec`, collecting violations; returns the value with snake_case field names. */
function normalize(value: Json, spec: FieldSpec, path: string, violations: FieldViolation[]): Json | undefined {
  switch (spec.kind) {
    case "string":
      return typeof value === "string" ? value : badValue(path, spec, value, violations);
    case "bool":
      return typeof value === "boolean" ? value : badValue(path, spec, value, violations);
    case "float":
      return typeof value === "number" ? value : badValue(path, spec, value, violations);
    case "int32": {
      // Protobuf JSON takes an int32 as a number or as a decimal string.
      const n = typeof value === "string" && /^-?\d+$/.test(value) ? Number(value) : value;
      const ok = typeof n === "number" && Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31;
      return ok ? n : badValue(path, spec, value, violations);
    }
    case "duration":
      return typeof value === "string" && /^-?\d+(\.\d{1,9})?s$/.test(value)
        ? value
        : badValue(path, spec, value, violations);
    case "timestamp":
      return typeof value === "string" &&
        /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/.test(value)
        ? value
        : badValue(path, spec, value, violations);
    case "enum": {
      if (typeof value === "string" && spec.values.includes(value)) return value;
      if (typeof value === "number" && Number.isInteger(value) && spec.values[value] !== undefined) {
        return spec.values[value] ?? null;
      }
      return badValue(path, spec, value, violations);
    }
    case "struct":
      return isObject(value) ? value : badValue(path, spec, value, violations);
    case "map": {
      if (!isObject(value)) return badValue(path, spec, value, violations);
      Object.values(value).forEach((entry, index) => {
        if (typeof entry !== "string") {
          const at = `${path}[${index}].value`;
          violations.push({
            field: at,
            description: `Invalid value at '${at}' (TYPE_STRING), ${JSON.stringify(entry)}`,
          });
        }
      });
      return value;
    }
    case "repeated": {
      if (!Array.isArray(value)) return badValue(path, spec, value, violations);
      return value.map((item, i) => normalize(item, spec.of, `${path}[${i}]`, violations) ?? null);
    }
    case "message": {
      if (!isObject(value)) return badValue(path, spec, value, violations);
      const out: JsonObject = {};
      for (const [key, fieldValue] of Object.entries(value)) {
        const name = snakeCase(key);
        const fieldSpec = spec.fields[name];
        if (!fieldSpec) {
          const where = path ? ` at '${path}'` : "";
          violations.push({
            field: path,
            description: `Invalid JSON payload received. Unknown name "${key}"${where}: Cannot find field.`,
          });
          continue;
        }
        // Protobuf JSON: null is the default value, i.e. the field is not set.
        if (fieldValue === null) continue;
        const normalized = normalize(fieldValue, fieldSpec, path ? `${path}.${name}` : name, violations);
        if (normalized !== undefined) out[name] = normalized;
      }
      return out;
    }
  }
}
