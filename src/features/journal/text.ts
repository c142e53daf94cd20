import type { Snippet } from "./schema";

/**
 * What the server computes from an entry's markdown: words (what a reader reads — link targets, image
 * addresses, markup and code-fence markers do not count) and reading time; and the highlighted snippet a
 * search result shows.
 */

const WORD = /[\p{L}\p{N}]+(?:['’.-][\p{L}\p{N}]+)*/gu;

/** The markdown's readable text: images and link targets dropped, markup characters removed. */
export function readableText(markdown: string): string {
  return markdown
    .replace(/!\[([^\]]*)\]\([^)]*\)/g, " $1 ") // images: their alt text only
    .replace(/\[([^\]]*)\]\([^)]*\)/g, " $1 ") // links: their text only
    .replace(/<[^>]+>/g, " ") // inline HTML tags
    .replace(/https?:\/\/\S+/g, " ") // bare addresses
    .replace(/[`*_~#>|]/g, " ");
}

export function wordCount(markdown: string): number {
  return readableText(markdown).match(WORD)?.length ?? 0;
}

/** Whole seconds at `wordsPerMinute`, rounded up (a one-word entry takes a second, an empty one none). */
export function readingTimeSeconds(words: number, wordsPerMinute: number): number {
  return Math.ceil((words * 60) / wordsPerMinute);
}

/** Lower case, accents off: how search terms and text are compared for highlighting. */
function fold(text: string): string {
  return text
    .normalize("NFD")
    .replace(/\p{M}+/gu, "")
    .toLowerCase();
}

/** Light stemming of a search term (plurals), so "gardens" highlights "garden" and "gardening". */
function stem(term: string): string {
  if (term.length > 4 && term.endsWith("ies")) return term.slice(0, -3);
  if (term.length > 3 && term.endsWith("es") && /(ss|sh|ch|x|z)es$/.test(term)) return term.slice(0, -2);
  if (term.length > 3 && term.endsWith("s") && !term.endsWith("ss")) return term.slice(0, -1);
  return term;
}

/** The words of a `$text` query worth highlighting: quoted phrases' words included, `-negated` ones not. */
export function highlightTerms(query: string): string[] {
  const words = query
    .replace(/"/g, " ")
    .split(/\s+/)
    .filter((w) => w.length > 0 && !w.startsWith("-"))
    .flatMap((w) => fold(w).match(/[\p{L}\p{N}]+/gu) ?? []);
  return [...new Set(words.filter((w) => w.length > 1).map(stem))];
}

interface Match {
  start: number;
  end: number;
}

function matchesIn(text: string, stems: string[]): Match[] {
  const out: Match[] = [];
  for (const m of text.matchAll(/[\p{L}\p{N}]+/gu)) {
    const word = fold(m[0]);
    if (stems.some((s) => word.startsWith(s))) out.push({ start: m.index, end: m.index + m[0].length });
  }
  return out;
}

/**
 * A short passage of the entry around the first matched word, with every matched word in it marked by offsets
 * (plain data: the app draws the highlight, so nothing in an entry can inject markup). Title first, then the
 * content, then the tags; without a match, null.
 */
export function snippetFor(
  entry: { title: string; content: string; tags: string[] },
  query: string,
  width = 160,
): Snippet | null {
  const stems = highlightTerms(query);
  if (stems.length === 0) return null;
  const titleMatches = matchesIn(entry.title, stems);
  const text = readableText(entry.content).replace(/\s+/g, " ").trim();
  const contentMatches = matchesIn(text, stems);
  if (contentMatches.length > 0) {
    const first = contentMatches[0] as Match;
    let start = Math.max(0, first.start - Math.floor(width / 3));
    // Start at a word boundary unless at the beginning.
    if (start > 0) {
      const space = text.indexOf(" ", start);
      start = space === -1 || space > first.start ? start : space + 1;
    }
    let end = Math.min(text.length, start + width);
    if (end < text.length) {
      const space = text.lastIndexOf(" ", end);
      if (space > first.end) end = space;
    }
    const prefix = start > 0 ? "…" : "";
    const suffix = end < text.length ? "…" : "";
    const shift = prefix.length - start;
    return {
      field: "content",
      text: `${prefix}${text.slice(start, end)}${suffix}`,
      highlights: contentMatches
        .filter((m) => m.start >= start && m.end <= end)
        .map((m) => ({ start: m.start + shift, end: m.end + shift })),
    };
  }
  if (titleMatches.length > 0) return { field: "title", text: entry.title, highlights: titleMatches };
  const tagText = entry.tags.map((t) => `#${t}`).join(" ");
  const tagMatches = matchesIn(tagText, stems);
  return tagMatches.length > 0 ? { field: "tags", text: tagText, highlights: tagMatches } : null;
}
