import { evalExpr } from "mingo/core";
import type { Iterator } from "mingo/lazy";
import type { Options } from "mingo/types";
import { invalidParameter } from "../../errors";
import { activeDeadline } from "./deadline";

/**
 * Bounds on what one mingo evaluation may do inside the embedded engine, which runs every request on one
 * thread: each operator call checks the operation's deadline (deadline.ts), every document leaving a
 * pipeline stage counts as a tick of it, and no single expression may build more than MongoDB would hold
 * for it in memory. A runaway expression so ends as ExecutionTimeout (or a 400) within about maxTimeMS,
 * and the requests queued behind it wait no longer than that.
 */

/** MongoDB's `internalQueryMaxRangeBytes` (100 MiB), which `$range` checks before building anything. */
export const MAX_RANGE_BYTES = 100 * 1024 * 1024;
/** MongoDB's size estimate of one `$range` element (a `Value`) and of the array around them. */
const RANGE_VALUE_BYTES = 16;
const RANGE_ARRAY_BYTES = 24;

/** Any other expression: at most as many elements as the largest `$range` MongoDB allows. */
export const MAX_BUILT_ARRAY_LENGTH = Math.floor((MAX_RANGE_BYTES - RANGE_ARRAY_BYTES) / RANGE_VALUE_BYTES);
/** A string no longer than a whole BSON document may be. */
export const MAX_BUILT_STRING_LENGTH = 16 * 1024 * 1024;

/** Arrays and strings from this size on re-read the clock at once: building them may itself have taken long. */
const LARGE_RESULT = 1_024;

function checkBuilt(result: unknown): void {
  const deadline = activeDeadline();
  let size = 0;
  if (Array.isArray(result)) {
    size = result.length;
    if (size > MAX_BUILT_ARRAY_LENGTH) {
      throw invalidParameter(
        `an expression built an array of ${size} elements, more than the ${MAX_BUILT_ARRAY_LENGTH} allowed`,
      );
    }
  } else if (typeof result === "string") {
    size = result.length;
    if (size > MAX_BUILT_STRING_LENGTH) {
      throw invalidParameter(`an expression built a string of more than ${MAX_BUILT_STRING_LENGTH} characters`);
    }
  }
  if (size >= LARGE_RESULT) deadline?.check();
  else deadline?.tick();
}

type Operators = Record<string, unknown>;
type Operator = (...args: unknown[]) => unknown;

/** Expression operators `(obj, expr, options) => value`: a tick per call, and a bound on what they build. */
export function guardExpressionOperators<T extends Operators>(operators: T): T {
  const guarded: Operators = {};
  for (const [name, operator] of Object.entries(operators)) {
    const call = operator as Operator;
    guarded[name] = (obj: unknown, expr: unknown, options: unknown) => {
      const result = call(obj, expr, options);
      checkBuilt(result);
      return result;
    };
  }
  return guarded as T;
}

/** Accumulators `(documents, expr, options) => value` see a whole group at once: the clock is read both sides. */
export function guardAccumulators<T extends Operators>(operators: T): T {
  const guarded: Operators = {};
  for (const [name, operator] of Object.entries(operators)) {
    const call = operator as Operator;
    guarded[name] = (documents: unknown, expr: unknown, options: unknown) => {
      activeDeadline()?.check();
      const result = call(documents, expr, options);
      checkBuilt(result);
      return result;
    };
  }
  return guarded as T;
}

/** Pipeline stages `(iterator, expr, options) => iterator`: every document a stage emits is a tick. */
export function guardStages<T extends Operators>(operators: T): T {
  const guarded: Operators = {};
  for (const [name, operator] of Object.entries(operators)) {
    const call = operator as Operator;
    guarded[name] = (input: unknown, expr: unknown, options: unknown) => {
      const output = call(input, expr, options) as Iterator;
      const deadline = activeDeadline();
      if (!deadline || typeof output?.map !== "function") return output;
      return output.map((document: unknown) => {
        deadline.tick();
        return document;
      });
    };
  }
  return guarded as T;
}

/**
 * `$range` as MongoDB has it: the size of the array is checked before it is built (mingo's would build
 * any size, running out of memory long before a deadline check could stop it).
 */
export function $range(obj: unknown, expr: unknown, options: Options): number[] {
  if (!Array.isArray(expr) || expr.length < 2 || expr.length > 3) throw invalidParameter("$range expects array(3)");
  const [start, end, step = 1] = evalExpr(obj, expr, options) as unknown[];
  for (const [label, value] of [
    ["arg1 <start>", start],
    ["arg2 <end>", end],
    ["arg3 <step>", step],
  ] as const) {
    if (typeof value !== "number" || !Number.isInteger(value)) {
      throw invalidParameter(`$range ${label} expression must resolve to integer`);
    }
  }
  const from = start as number;
  const to = end as number;
  const by = step as number;
  if (by === 0) throw invalidParameter("$range requires a non-zero step value");
  const length = Math.max(0, Math.ceil((to - from) / by));
  const bytes = RANGE_ARRAY_BYTES + length * RANGE_VALUE_BYTES;
  if (bytes >= MAX_RANGE_BYTES) {
    throw invalidParameter(
      `$range would use too much memory (${bytes} bytes) and cannot spill to disk. Memory limit: ${MAX_RANGE_BYTES} bytes`,
    );
  }
  const result = new Array<number>(length);
  for (let i = 0; i < length; i++) result[i] = from + i * by;
  return result;
}
