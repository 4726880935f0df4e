/**
 * @module traces/destinations/webhook
 * A JSON POST per trace to the team's own URL, signed so the receiver can tell it came from this
 * gateway and was not replayed later: `X-Switchyard-Signature: t=<unix seconds>,v1=<hex>` where
 * the hex is HMAC-SHA256 over `${t}.${body}` with the destination's signing secret (the scheme
 * Stripe uses; README shows how to verify it). `X-Switchyard-Delivery` carries the generation id,
 * so a receiver can drop the duplicate an at-least-once queue may deliver.
 */
import type { Trace } from "../schema";
import { mapLimited, post, type DeliveryOutcome } from "./http";

export const SIGNATURE_HEADER = "X-Switchyard-Signature";
export const DELIVERY_HEADER = "X-Switchyard-Delivery";

/** Concurrent POSTs per destination within one batch. */
export const WEBHOOK_CONCURRENCY = 3;

/** Signing keys imported per isolate, by secret: one import per destination, not one per trace. */
const signingKeys = new Map<string, Promise<CryptoKey>>();
/** Past this many secrets the cache starts over (destinations per isolate are few). */
const MAX_SIGNING_KEYS = 256;

function signingKey(secret: string): Promise<CryptoKey> {
  let key = signingKeys.get(secret);
  if (!key) {
    if (signingKeys.size >= MAX_SIGNING_KEYS) signingKeys.clear();
    key = crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    signingKeys.set(secret, key);
    // A secret that cannot be imported fails its delivery, and is tried afresh next time.
    key.catch(() => signingKeys.delete(secret));
  }
  return key;
}

/** Hex HMAC-SHA256 of `${timestamp}.${body}` under `secret`. */
export async function webhookSignature(secret: string, timestamp: number, body: string): Promise<string> {
  const key = await signingKey(secret);
  const mac = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(`${timestamp}.${body}`));
  return [...new Uint8Array(mac)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** The signature header's value for a body sent at `timestamp` (unix seconds). */
export async function signatureHeader(secret: string, timestamp: number, body: string): Promise<string> {
  return `t=${timestamp},v1=${await webhookSignature(secret, timestamp, body)}`;
}

export interface WebhookTarget {
  url: string;
  headers: Record<string, string>;
  signingSecret: string;
}

export async function deliverWebhook(target: WebhookTarget, traces: readonly Trace[]): Promise<DeliveryOutcome[]> {
  const host = new URL(target.url).host;
  return mapLimited(traces, WEBHOOK_CONCURRENCY, async (trace) => {
    const body = JSON.stringify(trace);
    const timestamp = Math.floor(Date.now() / 1000);
    return post(
      target.url,
      {
        headers: {
          ...target.headers,
          "content-type": "application/json",
          "user-agent": "Switchyard-Webhooks/1",
          [SIGNATURE_HEADER]: await signatureHeader(target.signingSecret, timestamp, body),
          [DELIVERY_HEADER]: trace.generation_id,
        },
        body,
      },
      `webhook ${host}`,
    );
  });
}
