/**
 * @module residency/ingress
 * The region of ingress: which region a request came in through, from its hostname. The mapping
 * is configuration (`REGION_HOSTS`, e.g. `"eu.gateway.example.com=eu"`, pairs separated by commas
 * or spaces) because the deployment's domains are its own; any hostname not listed is `global`.
 *
 * The hostname is the request URL's, which on Workers is the Custom Domain or route that received
 * the request. Cloudflare Regional Services on the EU hostname is what keeps TLS termination and
 * this Worker's execution in the EU; this module only names the region, it cannot enforce it.
 *
 * A malformed `REGION_HOSTS` maps every hostname to `global` and logs once: EU-pinned workspaces
 * are then refused (fail closed) while everyone else keeps working.
 */
import { z } from "zod";
import { workspaceRegionSchema, type WorkspaceRegion } from "./regions";

const hostname = z
  .string()
  .transform((s) => s.toLowerCase())
  .pipe(z.string().regex(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/, "a hostname (no scheme, port or path)"));

/** One `hostname=region` entry of `REGION_HOSTS`. */
export const regionHostSchema = z
  .string()
  .regex(/^[^=]+=[^=]+$/, "expected hostname=region")
  .transform((s) => s.split("="))
  .pipe(z.tuple([hostname, workspaceRegionSchema]));

export interface RegionHosts {
  hosts: ReadonlyMap<string, WorkspaceRegion>;
  /** Why the configuration was rejected (then `hosts` is empty), or null. */
  problem: string | null;
}

let parsed: { source: string; value: RegionHosts } | undefined;

/** Parse `REGION_HOSTS` (cached per isolate for the value last seen); one bad entry rejects it whole. */
export function regionHosts(source: string | undefined): RegionHosts {
  const text = source ?? "";
  if (parsed?.source === text) return parsed.value;
  const hosts = new Map<string, WorkspaceRegion>();
  const problems: string[] = [];
  for (const raw of text.split(/[\s,]+/).filter((part) => part.length > 0)) {
    const entry = regionHostSchema.safeParse(raw);
    if (entry.success) hosts.set(entry.data[0], entry.data[1]);
    else problems.push(`${JSON.stringify(raw)}: ${entry.error.issues[0]?.message ?? "invalid"}`);
  }
  const value: RegionHosts = problems.length ? { hosts: new Map(), problem: problems.join("; ") } : { hosts, problem: null };
  if (value.problem) {
    console.error(JSON.stringify({ level: "error", msg: "REGION_HOSTS is malformed; every hostname is treated as global", problem: value.problem }));
  }
  parsed = { source: text, value };
  return value;
}

/** The region of ingress of a request to `url`. */
export function ingressRegion(url: string, source: string | undefined): WorkspaceRegion {
  const host = new URL(url).hostname.toLowerCase();
  return regionHosts(source).hosts.get(host) ?? "global";
}
