/**
 * @module traces/destinations/s3
 * Traces as JSON Lines objects in S3-compatible storage: through the Worker's own R2 binding
 * (`TRACE_ARCHIVE`, no credentials) or any S3 API (AWS S3, R2's S3 endpoint, MinIO…) signed with
 * SigV4 by `aws4fetch`. One object per destination per delivery batch, keyed
 * `<prefix><workspace>/<yyyy-mm-dd>/<hhmmss>-<digest>.jsonl` from the traces' own start times and
 * ids, so a retried batch overwrites its object instead of writing a second copy.
 */
import { AwsClient } from "aws4fetch";
import type { Trace } from "../schema";
import { DELIVERY_TIMEOUT_MS, misconfigured, networkFailure, outcomeOf, type DeliveryOutcome } from "./http";

const CONTENT_TYPE = "application/x-ndjson";

/** One trace per line, newline-terminated. */
export function jsonLines(traces: readonly Trace[]): string {
  return traces.map((t) => `${JSON.stringify(t)}\n`).join("");
}

async function digest(text: string): Promise<string> {
  const bytes = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
  return [...bytes.slice(0, 8)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** The object key for a group of traces of one workspace (at least one trace). */
export async function objectKey(prefix: string, traces: readonly Trace[]): Promise<string> {
  const first = traces.reduce((a, b) => (b.started_at < a.started_at ? b : a));
  const iso = new Date(first.started_at).toISOString();
  const time = iso.slice(11, 19).replaceAll(":", "");
  const ids = traces.map((t) => t.generation_id).sort();
  return `${prefix}${first.workspace_id}/${iso.slice(0, 10)}/${time}-${await digest(ids.join("\n"))}.jsonl`;
}

export type S3Target =
  | { via: "binding"; prefix: string }
  | { via: "sigv4"; endpoint: string; bucket: string; region: string; prefix: string; accessKeyId: string; secretAccessKey: string };

/** Write the group as one object; every trace of it shares the outcome. */
export async function deliverS3(target: S3Target, traces: readonly Trace[], archive: R2Bucket | undefined): Promise<DeliveryOutcome[]> {
  if (traces.length === 0) return [];
  const key = await objectKey(target.prefix, traces);
  const body = jsonLines(traces);
  const outcome = target.via === "binding" ? await putToBinding(archive, key, body) : await putSigned(target, key, body);
  return traces.map(() => outcome);
}

async function putToBinding(archive: R2Bucket | undefined, key: string, body: string): Promise<DeliveryOutcome> {
  if (!archive) return misconfigured("the TRACE_ARCHIVE R2 bucket is not bound to this Worker");
  try {
    await archive.put(key, body, { httpMetadata: { contentType: CONTENT_TYPE } });
    return { ok: true, status: null };
  } catch (error) {
    return networkFailure("R2 bucket TRACE_ARCHIVE", error);
  }
}

/** Path-style URL (`<endpoint>/<bucket>/<key>`), which R2, MinIO and S3 all accept. */
export function objectUrl(endpoint: string, bucket: string, key: string): string {
  const path = key.split("/").map(encodeURIComponent).join("/");
  return `${endpoint.replace(/\/+$/, "")}/${bucket}/${path}`;
}

async function putSigned(target: Extract<S3Target, { via: "sigv4" }>, key: string, body: string): Promise<DeliveryOutcome> {
  // No retries inside aws4fetch: the queue retries with backoff and records every attempt.
  const client = new AwsClient({ accessKeyId: target.accessKeyId, secretAccessKey: target.secretAccessKey, service: "s3", region: target.region, retries: 0 });
  const url = objectUrl(target.endpoint, target.bucket, key);
  const what = `S3 bucket ${target.bucket} at ${new URL(url).host}`;
  try {
    const signed = await client.sign(url, { method: "PUT", body, headers: { "content-type": CONTENT_TYPE } });
    const response = await fetch(signed, { signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS) });
    return await outcomeOf(response, what);
  } catch (error) {
    return networkFailure(what, error);
  }
}
