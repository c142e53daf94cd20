/**
 * The caller's IP as the edge saw it. On Workers `CF-Connecting-IP` is set by Cloudflare (a client cannot
 * forge it); the Deno entry overwrites it with the socket's address. IPv6 callers are keyed by their /64,
 * since one subscriber usually owns a whole /64 and could otherwise rotate addresses freely.
 */
export function clientIp(headers: Headers): string {
  const raw = headers.get("cf-connecting-ip")?.trim() || "unknown";
  return raw.includes(":") ? ipv6Prefix64(raw) : raw;
}

export function ipv6Prefix64(address: string): string {
  const bare = address.replace(/^\[|\]$/g, "").split("%")[0] ?? "";
  const [head = "", tail = ""] = bare.split("::");
  const headParts = head ? head.split(":") : [];
  const tailParts = tail ? tail.split(":") : [];
  const missing = bare.includes("::") ? 8 - headParts.length - tailParts.length : 0;
  const groups = [...headParts, ...Array<string>(Math.max(0, missing)).fill("0"), ...tailParts];
  return `${groups
    .slice(0, 4)
    .map((g) => (Number.parseInt(g || "0", 16) || 0).toString(16))
    .join(":")}::/64`;
}
