/**
 * @module stamp-headers
 * Headers a middleware adds to the finished response (request id, region of ingress). Hono's
 * `c.header` after the handler copies the whole response on every call, because a response's
 * headers may be immutable (a fetched one's are). Every response this app builds has mutable
 * headers, so they are set in place, and the copy stays for a response that refuses.
 */
import type { Context } from "hono";

export function stampHeaders(c: Context, headers: Record<string, string>): void {
  try {
    for (const name in headers) c.res.headers.set(name, headers[name]!);
  } catch {
    for (const name in headers) c.header(name, headers[name]);
  }
}
