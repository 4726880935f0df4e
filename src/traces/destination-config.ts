/**
 * @module traces/destination-config
 * What a trace destination is: the admin API's input, split into settings (sampling, key filter,
 * privacy), a public config stored as JSON, and a secret stored encrypted (auth/secrets.ts); and
 * the `Target` a delivery uses once the secret is decrypted. One zod schema per shape, because
 * both the admin body and the stored JSON cross an edge.
 */
import { z } from "zod";

/**
 * https:// only — except plain http:// to a loopback host, for local development against the mock
 * provider's sink (`npm start`, the benchmark): a deployed Worker cannot reach loopback, so such a
 * destination can only ever fail there, never leak.
 */
const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]"]);
const httpsUrl = z
  .url({ protocol: /^https?$/, message: "must be an https:// URL" })
  .max(2048)
  .refine((u) => {
    const url = new URL(u);
    return url.protocol === "https:" || LOOPBACK.has(url.hostname);
  }, "must be an https:// URL (http:// only to a loopback host, for local development)")
  .refine((u) => {
    const url = new URL(u);
    return url.username === "" && url.password === "";
  }, "must not contain credentials: put them in the secret fields");

const headerName = z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$/, "not a valid HTTP header name");
const headerValue = z
  .string()
  .max(8192)
  .refine((v) => !/[\r\n\0]/.test(v), "must not contain line breaks");

/** Headers Switchyard sets itself; a destination may not replace them. */
const RESERVED_HEADERS = new Set(["host", "content-length", "content-type", "x-switchyard-signature", "x-switchyard-delivery"]);

const headerMap = z
  .record(headerName, headerValue)
  .refine((h) => Object.keys(h).length <= 32, "at most 32 headers")
  .refine((h) => Object.keys(h).every((name) => !RESERVED_HEADERS.has(name.toLowerCase())), "sets a header Switchyard sets itself");

/** Names that usually carry a credential: refused in public headers, whose values the API shows. */
const CREDENTIAL_HEADER = /auth|key|token|secret|password|team|cookie/i;
const publicHeaders = headerMap.refine(
  (h) => Object.keys(h).every((name) => !CREDENTIAL_HEADER.test(name)),
  "looks like a credential: put it in `secret_headers`, which are encrypted and never shown",
);

const prefix = z
  .string()
  .max(256)
  .regex(/^[A-Za-z0-9!_.*'()/=-]*$/, "letters, digits and !_.*'()/=- only")
  .refine((p) => !p.startsWith("/"), "must not start with '/'");

const secretString = (min: number) =>
  z
    .string()
    .min(min)
    .max(4096)
    .refine((s) => s.trim() === s && !/\s/.test(s), "must not contain whitespace");

/** Settings every destination has, with their defaults. */
const settingsInput = {
  name: z.string().min(1).max(128).optional(),
  enabled: z.boolean().default(true),
  sampling_rate: z.number().min(0).max(1).default(1),
  api_key_ids: z.array(z.string().min(1).max(64)).max(256).nullable().default(null),
  privacy_mode: z.boolean().default(false),
};

/** Key pairs are replaced together: half a pair is a mistake. */
const PAIR = { message: "give both halves of the key pair, or neither to keep the stored one" };

const webhookInput = z.strictObject({
  type: z.literal("webhook"),
  ...settingsInput,
  url: httpsUrl,
  headers: publicHeaders.default({}),
  /** HMAC-SHA256 key for `X-Switchyard-Signature`; optional on update (the stored one is kept). */
  signing_secret: secretString(16).optional(),
});

const otlpInput = z.strictObject({
  type: z.literal("otlp"),
  ...settingsInput,
  /** Base URL; spans are POSTed to `<endpoint>/v1/traces` (unless it already ends so). */
  endpoint: httpsUrl,
  headers: publicHeaders.default({}),
  /** Headers carrying credentials (Authorization, x-honeycomb-team, dd-api-key…): encrypted. */
  secret_headers: headerMap.optional(),
});

const s3BindingInput = z.strictObject({
  type: z.literal("s3"),
  via: z.literal("binding"),
  ...settingsInput,
  prefix: prefix.default("traces/"),
});

const s3SigV4Input = z.strictObject({
  type: z.literal("s3"),
  via: z.literal("sigv4"),
  ...settingsInput,
  /** The service endpoint, e.g. `https://s3.eu-west-1.amazonaws.com` or `https://<account>.r2.cloudflarestorage.com`. */
  endpoint: httpsUrl,
  bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, "not a valid bucket name"),
  region: z.string().regex(/^[a-z0-9-]{1,32}$/, "not a valid region").default("auto"),
  prefix: prefix.default("traces/"),
  access_key_id: secretString(4).optional(),
  secret_access_key: secretString(8).optional(),
}).refine((b) => (b.access_key_id === undefined) === (b.secret_access_key === undefined), PAIR);

const langfuseInput = z.strictObject({
  type: z.literal("langfuse"),
  ...settingsInput,
  base_url: httpsUrl.default("https://cloud.langfuse.com"),
  public_key: secretString(4).optional(),
  secret_key: secretString(8).optional(),
}).refine((b) => (b.public_key === undefined) === (b.secret_key === undefined), PAIR);

/** The body of `PUT /workspaces/:id/destinations/:destId`. */
export const destinationInputSchema = z.discriminatedUnion("type", [
  webhookInput,
  otlpInput,
  z.discriminatedUnion("via", [s3BindingInput, s3SigV4Input]),
  langfuseInput,
]);
export type DestinationInput = z.infer<typeof destinationInputSchema>;
export type DestinationType = DestinationInput["type"];

/** The public part of a destination, stored as JSON and shown by the admin API. */
export const targetConfigSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("webhook"), url: z.string(), headers: z.record(z.string(), z.string()) }),
  z.object({ type: z.literal("otlp"), endpoint: z.string(), headers: z.record(z.string(), z.string()) }),
  z.discriminatedUnion("via", [
    z.object({ type: z.literal("s3"), via: z.literal("binding"), prefix: z.string() }),
    z.object({ type: z.literal("s3"), via: z.literal("sigv4"), endpoint: z.string(), bucket: z.string(), region: z.string(), prefix: z.string() }),
  ]),
  z.object({ type: z.literal("langfuse"), base_url: z.string() }),
]);
export type TargetConfig = z.infer<typeof targetConfigSchema>;

const webhookSecret = z.object({ signing_secret: z.string().min(1) });
const otlpSecret = z.object({ headers: z.record(z.string(), z.string()) });
const s3Secret = z.object({ access_key_id: z.string().min(1), secret_access_key: z.string().min(1) });
const langfuseSecret = z.object({ public_key: z.string().min(1), secret_key: z.string().min(1) });

/** A destination ready to deliver to: its public config with its decrypted secret. */
export type Target =
  | { type: "webhook"; url: string; headers: Record<string, string>; signingSecret: string }
  | { type: "otlp"; endpoint: string; headers: Record<string, string> }
  | { type: "s3"; via: "binding"; prefix: string }
  | { type: "s3"; via: "sigv4"; endpoint: string; bucket: string; region: string; prefix: string; accessKeyId: string; secretAccessKey: string }
  | { type: "langfuse"; baseUrl: string; publicKey: string; secretKey: string };

/** What the admin input becomes: settings, the public config and the secret (when given). */
export interface SplitInput {
  settings: { name: string | null; enabled: boolean; samplingRate: number; apiKeyIds: string[] | null; privacyMode: boolean };
  config: TargetConfig;
  /** The secret fields given in this input; undefined when none were (an update may keep the stored ones). */
  secret: Record<string, unknown> | undefined;
  /** True when the type needs a secret to deliver. */
  needsSecret: boolean;
}

export function splitInput(input: DestinationInput): SplitInput {
  const settings = {
    name: input.name ?? null,
    enabled: input.enabled,
    samplingRate: input.sampling_rate,
    apiKeyIds: input.api_key_ids,
    privacyMode: input.privacy_mode,
  };
  switch (input.type) {
    case "webhook":
      return {
        settings,
        config: { type: "webhook", url: input.url, headers: input.headers },
        secret: input.signing_secret === undefined ? undefined : { signing_secret: input.signing_secret },
        needsSecret: true,
      };
    case "otlp":
      return {
        settings,
        config: { type: "otlp", endpoint: input.endpoint, headers: input.headers },
        secret: input.secret_headers === undefined ? undefined : { headers: input.secret_headers },
        needsSecret: false,
      };
    case "s3":
      if (input.via === "binding") return { settings, config: { type: "s3", via: "binding", prefix: input.prefix }, secret: undefined, needsSecret: false };
      return {
        settings,
        config: { type: "s3", via: "sigv4", endpoint: input.endpoint, bucket: input.bucket, region: input.region, prefix: input.prefix },
        secret: input.access_key_id && input.secret_access_key ? { access_key_id: input.access_key_id, secret_access_key: input.secret_access_key } : undefined,
        needsSecret: true,
      };
    case "langfuse":
      return {
        settings,
        config: { type: "langfuse", base_url: input.base_url },
        secret: input.public_key && input.secret_key ? { public_key: input.public_key, secret_key: input.secret_key } : undefined,
        needsSecret: true,
      };
  }
}

/**
 * The secret's recognisable ends: field (or header name) → its last 4 characters (fewer for a
 * short value, never more than a quarter of it).
 */
export function secretHint(secret: Record<string, unknown> | undefined): Record<string, string> {
  const hint: Record<string, string> = {};
  const tail = (value: string) => value.slice(-Math.min(4, Math.floor(value.length / 4)));
  for (const [field, value] of Object.entries(secret ?? {})) {
    if (typeof value === "string") hint[field] = tail(value);
    else if (value && typeof value === "object") {
      for (const [name, v] of Object.entries(value)) if (typeof v === "string") hint[`${field}.${name}`] = tail(v);
    }
  }
  return hint;
}

/** Join a stored config with its decrypted secret; a string says why it cannot deliver. */
export function resolveTarget(config: TargetConfig, secret: unknown): Target | string {
  switch (config.type) {
    case "webhook": {
      const s = webhookSecret.safeParse(secret);
      return s.success ? { ...config, signingSecret: s.data.signing_secret } : "the webhook has no signing secret";
    }
    case "otlp": {
      const s = secret === null ? { success: true as const, data: { headers: {} } } : otlpSecret.safeParse(secret);
      return s.success ? { type: "otlp", endpoint: config.endpoint, headers: { ...config.headers, ...s.data.headers } } : "the secret headers are malformed";
    }
    case "s3": {
      if (config.via === "binding") return config;
      const s = s3Secret.safeParse(secret);
      return s.success ? { ...config, accessKeyId: s.data.access_key_id, secretAccessKey: s.data.secret_access_key } : "the S3 destination has no access key";
    }
    case "langfuse": {
      const s = langfuseSecret.safeParse(secret);
      return s.success ? { type: "langfuse", baseUrl: config.base_url, publicKey: s.data.public_key, secretKey: s.data.secret_key } : "the Langfuse destination has no key pair";
    }
  }
}
