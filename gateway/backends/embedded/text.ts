import { invalidParameter } from "../../errors";
import type { Document } from "../types";
import { indexValuesAtPath } from "./values";

/**
 * `$text` over a collection's text index, approximating MongoDB: case- and diacritic-insensitive word match
 * over the indexed fields, English stop words ignored, plurals folded ("posts" finds "post"), quoted phrases
 * required (substring match), `-word` excludes. Scores follow MongoDB's shape (weight × term frequency,
 * damped by field length) so ordering by `{$meta: "textScore"}` is sensible, not identical.
 */

/** Hidden field carrying a document's `$text` score through sorts and aggregation stages. */
export const TEXT_SCORE_FIELD = "\u0000textScore";

export interface TextIndexFields {
  /** Dotted field path → weight. */
  readonly weights: ReadonlyMap<string, number>;
}

export interface TextSearch {
  readonly terms: readonly string[];
  readonly phrases: readonly string[];
  readonly negated: readonly string[];
}

const STOP_WORDS = new Set(
  (
    "a about above after again against all am an and any are as at be because been before being below between " +
    "both but by can did do does doing down during each few for from further had has have having he her here hers " +
    "herself him himself his how i if in into is it its itself just me more most my myself no nor not now of off " +
    "on once only or other our ours ourselves out over own same she should so some such than that the their theirs " +
    "them themselves then there these they this those through to too under until up very was we were what when " +
    "where which while who whom why will with you your yours yourself yourselves"
  ).split(" "),
);

function normalize(text: string): string {
  return text
    .normalize("NFD")
    .replace(/\p{M}+/gu, "")
    .toLowerCase();
}

/** A light English stemmer (plural folding only): enough for "cats" ~ "cat", "stories" ~ "story". */
function stem(word: string): string {
  if (word.length > 4 && word.endsWith("ies")) return `${word.slice(0, -3)}y`;
  if (word.length > 4 && (word.endsWith("sses") || word.endsWith("shes") || word.endsWith("ches")))
    return word.slice(0, -2);
  if (word.length > 3 && word.endsWith("s") && !word.endsWith("ss") && !word.endsWith("us")) return word.slice(0, -1);
  return word;
}

function tokenize(text: string): string[] {
  return normalize(text)
    .split(/[^\p{L}\p{N}]+/u)
    .filter((word) => word.length > 0);
}

function searchTerms(text: string): string[] {
  return tokenize(text)
    .filter((word) => !STOP_WORDS.has(word))
    .map(stem);
}

export function parseTextSearch(search: string): TextSearch {
  const phrases: string[] = [];
  const rest = search.replace(/"([^"]*)"/g, (_match, phrase: string) => {
    const normalized = tokenize(phrase).join(" ");
    if (normalized) phrases.push(normalized);
    return ` ${phrase} `;
  });
  const terms: string[] = [];
  const negated: string[] = [];
  for (const word of rest.split(/\s+/)) {
    if (word.startsWith("-") && word.length > 1) negated.push(...searchTerms(word.slice(1)));
    else terms.push(...searchTerms(word));
  }
  return { terms: [...new Set(terms)], phrases, negated: [...new Set(negated)] };
}

/** Reads a `$text` operand and returns the search; rejects the options the engine does not model. */
export function readTextOperator(operand: unknown): TextSearch {
  if (operand === null || typeof operand !== "object" || Array.isArray(operand)) {
    throw invalidParameter("$text expects an object with $search");
  }
  const { $search, $language: _language, $caseSensitive, $diacriticSensitive, ...unknown } = operand as Document;
  if (typeof $search !== "string") throw invalidParameter("$text.$search must be a string");
  if (Object.keys(unknown).length > 0) throw invalidParameter(`unknown $text option ${Object.keys(unknown)[0]}`);
  if ($caseSensitive === true || $diacriticSensitive === true) {
    throw invalidParameter("$caseSensitive / $diacriticSensitive text search is not supported");
  }
  return parseTextSearch($search);
}

function fieldTexts(document: Document, path: string): string[] {
  return indexValuesAtPath(document, path.split(".")).filter((value): value is string => typeof value === "string");
}

/**
 * 0 when the document does not match the search; a positive score otherwise. MongoDB's formula: per field,
 * each term's frequency decays (1 + 1/2 + 1/4 … for repeated occurrences), damped by the field's length in
 * non-stop-word tokens, times the field's weight.
 */
export function textScore(document: Document, index: TextIndexFields, search: TextSearch): number {
  if (search.terms.length === 0 && search.phrases.length === 0) return 0;
  let score = 0;
  let anyTerm = false;
  const texts: string[] = [];
  for (const [path, weight] of index.weights) {
    for (const text of fieldTexts(document, path)) {
      texts.push(text);
      const words = searchTerms(text);
      if (words.length === 0) continue;
      const counts = new Map<string, number>();
      for (const word of words) counts.set(word, (counts.get(word) ?? 0) + 1);
      for (const negated of search.negated) if (counts.has(negated)) return 0;
      for (const term of search.terms) {
        const count = counts.get(term);
        if (!count) continue;
        anyTerm = true;
        const frequency = 2 - 2 ** (1 - count); // 1 + 1/2 + … + 1/2^(count-1)
        score += weight * frequency * (0.5 + (0.5 * count) / words.length);
      }
    }
  }
  if (search.phrases.length > 0) {
    const haystack = texts.map((text) => tokenize(text).join(" "));
    for (const phrase of search.phrases) if (!haystack.some((text) => text.includes(phrase))) return 0;
    return Math.max(score, 0.5);
  }
  return anyTerm ? score : 0;
}
