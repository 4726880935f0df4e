/**
 * @module db/schema
 * The catalog and the control plane's configuration in D1. drizzle-kit generates `migrations/`
 * from this file (`npm run db:generate`); wrangler and the tests apply the same SQL.
 *
 * Money is integers: prices are micro-dollars (µ$) per million tokens, so a request's cost is
 * computed exactly and rounded once (see billing/pricing.ts).
 */
import { sql } from "drizzle-orm";
import { foreignKey, index, integer, primaryKey, real, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import type { ProviderFamily, ProviderOptions } from "../providers/types";
import type { ProviderPreferences } from "../schemas/openrouter";

export type Region = "eu" | "us" | "global";

/** Where a workspace's data and traffic may go (src/residency): anywhere, or the EU only. */
export type WorkspaceRegion = "global" | "eu";

/** The route decision kept with each generation (src/residency/audit.ts), as stored JSON. */
export interface RouteRecord {
  /** Region of ingress: the hostname's region (src/residency/ingress.ts). */
  ingress: WorkspaceRegion;
  /** The workspace's region policy when the request was planned. */
  policy: WorkspaceRegion;
  /** Candidates in the order they were to be tried: `[endpoint id, endpoint region]`. */
  candidates: Array<[string, string]>;
  /** Endpoints left out: `[model, provider, constraint, reason]`. */
  excluded: Array<[string, string, string, string]>;
  /** Entries cut from either list to bound the row (0 almost always). */
  truncated: number;
}

const createdAt = () =>
  integer("created_at", { mode: "number" })
    .notNull()
    .default(sql`(unixepoch() * 1000)`);

export const workspaces = sqliteTable("workspaces", {
  id: text("id").primaryKey(),
  name: text("name").notNull(),
  /** Model used when a request names none. */
  defaultModel: text("default_model"),
  /** Workspace-wide limits (null: none): requests and tokens per minute, requests in flight. */
  rpm: integer("rpm"),
  tpm: integer("tpm"),
  concurrency: integer("concurrency"),
  /**
   * LedgerShard objects admitting this workspace's requests (1–64; 1: the Ledger admits every
   * request). See docs/ledger-leases.md.
   */
  ledgerShards: integer("ledger_shards").notNull().default(1),
  /**
   * Default `provider` preferences for every request of the workspace (null: none), merged with
   * each request's own (routing/merge: the workspace's restrictions cap the request's).
   */
  providerPreferences: text("provider_preferences", { mode: "json" }).$type<ProviderPreferences>(),
  /**
   * Residency (src/residency): `eu` routes only to EU endpoints and keeps the ledger, health,
   * generation records and traces in EU-jurisdiction resources; `global` has no restriction.
   */
  region: text("region").$type<WorkspaceRegion>().notNull().default("global"),
  /** An `eu` workspace is refused on non-EU hostnames unless this is set. */
  allowNonEuIngress: integer("allow_non_eu_ingress", { mode: "boolean" }).notNull().default(false),
  createdAt: createdAt(),
});

export const apiKeys = sqliteTable(
  "api_keys",
  {
    id: text("id").primaryKey(),
    workspaceId: text("workspace_id")
      .notNull()
      .references(() => workspaces.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    /** SHA-256 of the whole key, hex. The key itself is never stored. */
    hash: text("hash").notNull(),
    /** What a human may see to recognise the key: its prefix and last 4 characters. */
    label: text("label").notNull(),
    /** `inference` keys call models; `management` keys manage a workspace's keys (and nothing else). */
    kind: text("kind").$type<"inference" | "management">().notNull().default("inference"),
    disabled: integer("disabled", { mode: "boolean" }).notNull().default(false),
    /** Epoch milliseconds; null means the key never expires. */
    expiresAt: integer("expires_at", { mode: "number" }),
    /** Credit limit in µ$ per reset period (lifetime when `limitReset` is null); null: no limit. */
    limitMicros: integer("limit_micros"),
    limitReset: text("limit_reset").$type<"daily" | "weekly" | "monthly">(),
    includeByokInLimit: integer("include_byok_in_limit", { mode: "boolean" }).notNull().default(false),
    rpm: integer("rpm"),
    tpm: integer("tpm"),
    concurrency: integer("concurrency"),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex("api_keys_hash_idx").on(t.hash), index("api_keys_workspace_idx").on(t.workspaceId)],
);

export const providers = sqliteTable("providers", {
  /** OpenRouter-style provider slug, e.g. "openai", "azure-eu", "mistral". */
  slug: text("slug").primaryKey(),
  name: text("name").notNull(),
  family: text("family").$type<ProviderFamily>().notNull(),
  /**
   * Prefix of the environment variables holding this provider's credential and base URL:
   * `${envPrefix}_API_KEY`, `${envPrefix}_BASE_URL`.
   */
  envPrefix: text("env_prefix").notNull(),
  /** The provider's public base URL; `${envPrefix}_BASE_URL` in the environment overrides it. */
  baseUrl: text("base_url"),
  region: text("region").$type<Region>().notNull().default("global"),
  retainsPrompts: integer("retains_prompts", { mode: "boolean" }).notNull().default(false),
  trainsOnData: integer("trains_on_data", { mode: "boolean" }).notNull().default(false),
  zeroRetention: integer("zero_retention", { mode: "boolean" }).notNull().default(false),
  options: text("options", { mode: "json" }).$type<ProviderOptions>().notNull().default({}),
  createdAt: createdAt(),
});

export const models = sqliteTable("models", {
  /** OpenRouter slug `author/name`. */
  id: text("id").primaryKey(),
  name: text("name").notNull(),
  description: text("description").notNull().default(""),
  contextLength: integer("context_length").notNull(),
  inputModalities: text("input_modalities", { mode: "json" }).$type<string[]>().notNull().default(["text"]),
  outputModalities: text("output_modalities", { mode: "json" }).$type<string[]>().notNull().default(["text"]),
  supportedParameters: text("supported_parameters", { mode: "json" }).$type<string[]>().notNull().default([]),
  tokenizer: text("tokenizer").notNull().default("Other"),
  createdAt: createdAt(),
});

export const endpoints = sqliteTable(
  "endpoints",
  {
    id: text("id").primaryKey(),
    modelId: text("model_id")
      .notNull()
      .references(() => models.id, { onDelete: "cascade" }),
    providerSlug: text("provider_slug")
      .notNull()
      .references(() => providers.slug, { onDelete: "cascade" }),
    /** The provider's own model id (Azure: the deployment name). */
    upstreamModel: text("upstream_model").notNull(),
    /** µ$ per million prompt tokens (uncached). */
    promptPrice: integer("prompt_price").notNull(),
    /** µ$ per million completion tokens (reasoning tokens included). */
    completionPrice: integer("completion_price").notNull(),
    /** µ$ per million cached prompt tokens read; null: billed at the prompt price. */
    cacheReadPrice: integer("cache_read_price"),
    /** µ$ per million prompt tokens written to the cache; null: billed at the prompt price. */
    cacheWritePrice: integer("cache_write_price"),
    /** µ$ per request. */
    requestPrice: integer("request_price").notNull().default(0),
    contextLength: integer("context_length").notNull(),
    maxOutputTokens: integer("max_output_tokens"),
    quantization: text("quantization").notNull().default("unknown"),
    supportedParameters: text("supported_parameters", { mode: "json" }).$type<string[]>().notNull().default([]),
    /** Null: the provider's region. */
    region: text("region").$type<Region>(),
    enabled: integer("enabled", { mode: "boolean" }).notNull().default(true),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex("endpoints_model_provider_idx").on(t.modelId, t.providerSlug), index("endpoints_model_idx").on(t.modelId)],
);

/**
 * One row per request that reached an upstream: what `GET /generation` returns, and the audit of
 * where it went (region of ingress, the route decision, the endpoint's region). Written to the D1
 * of the workspace's region (`DB`, or `DB_EU` for an `eu` workspace; src/residency/bindings.ts),
 * so the table exists in both. No prompt or completion content is ever stored here.
 *
 * One row written per request, nothing more: D1 bills every row written and counts each index
 * entry as one, so the table is `WITHOUT ROWID` with the primary key `(workspace_id, id)` and no
 * secondary index (migrations/0007). The key serves `GET /generation` (workspace and id), and the
 * residency report's time ranges: ids are `gen-<unix seconds>-<hex>` (api/chat/shape.ts), so a
 * workspace's records sort by time inside the key (residency/report.ts seeks by id and filters by
 * `created_at`). drizzle-orm has no WITHOUT ROWID option: this declaration gives columns and key,
 * and the migration's SQL adds `WITHOUT ROWID` by hand; a later drizzle-kit rebuild of this table
 * must add it again. Ids are unique per workspace (random, 96 bits), no longer enforced globally.
 */
export const generations = sqliteTable(
  "generations",
  {
    id: text("id").notNull(),
    workspaceId: text("workspace_id").notNull(),
    keyId: text("key_id").notNull(),
    requestId: text("request_id").notNull(),
    model: text("model").notNull(),
    providerName: text("provider_name").notNull(),
    endpointId: text("endpoint_id").notNull(),
    upstreamModel: text("upstream_model").notNull(),
    streamed: integer("streamed", { mode: "boolean" }).notNull(),
    cancelled: integer("cancelled", { mode: "boolean" }).notNull().default(false),
    isByok: integer("is_byok", { mode: "boolean" }).notNull().default(false),
    finishReason: text("finish_reason"),
    nativeFinishReason: text("native_finish_reason"),
    tokensPrompt: integer("tokens_prompt").notNull(),
    tokensCompletion: integer("tokens_completion").notNull(),
    tokensCached: integer("tokens_cached").notNull(),
    tokensCacheWrite: integer("tokens_cache_write").notNull(),
    tokensReasoning: integer("tokens_reasoning").notNull(),
    /** What was charged, µ$ (the BYOK fee for BYOK requests). */
    costMicros: integer("cost_micros").notNull(),
    /** What the request cost at the provider's price, µ$. */
    upstreamCostMicros: integer("upstream_cost_micros").notNull(),
    /** Milliseconds from the request's arrival to the last byte. */
    latencyMs: integer("latency_ms").notNull(),
    /** Milliseconds from the request's arrival to the first content. */
    timeToFirstTokenMs: integer("ttft_ms"),
    /** Milliseconds from the first content to the last byte. */
    generationTimeMs: integer("generation_time_ms"),
    attempts: integer("attempts").notNull(),
    /** Region of ingress (null: recorded before residency existed). */
    ingressRegion: text("ingress_region").$type<WorkspaceRegion>(),
    /** The serving endpoint's region. */
    endpointRegion: text("endpoint_region").$type<Region>(),
    /** How many endpoints the plan left out (the route's `excluded`, before truncation). */
    excludedCount: integer("excluded_count"),
    /** The whole route decision: candidates and exclusions with their reasons. */
    route: text("route", { mode: "json" }).$type<RouteRecord>(),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.workspaceId, t.id] })],
);

/**
 * A workspace's own provider API key (BYOK), encrypted at rest with AES-GCM under a key derived
 * from `MASTER_KEY` and the workspace id (auth/secrets.ts). Only `last4` is ever shown.
 */
export const providerCredentials = sqliteTable(
  "provider_credentials",
  {
    workspaceId: text("workspace_id")
      .notNull()
      .references(() => workspaces.id, { onDelete: "cascade" }),
    providerSlug: text("provider_slug")
      .notNull()
      .references(() => providers.slug, { onDelete: "cascade" }),
    /** AES-GCM ciphertext with its tag, base64. */
    ciphertext: text("ciphertext").notNull(),
    /** The 12-byte AES-GCM nonce, base64. */
    iv: text("iv").notNull(),
    /** The key's last 4 characters, to recognise it. */
    last4: text("last4").notNull(),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex("provider_credentials_workspace_provider_idx").on(t.workspaceId, t.providerSlug)],
);

/**
 * A workspace's trace destination (webhook, OTLP, S3, Langfuse; traces/destination-config.ts).
 * Its secret — signing key, credential headers or key pair — is one JSON object encrypted with
 * AES-GCM under `MASTER_KEY` (auth/secrets.ts), bound to the workspace and destination id; only
 * `secret_hint` (the last 4 characters of each field) is ever shown.
 */
export const traceDestinations = sqliteTable(
  "trace_destinations",
  {
    workspaceId: text("workspace_id")
      .notNull()
      .references(() => workspaces.id, { onDelete: "cascade" }),
    id: text("id").notNull(),
    name: text("name"),
    type: text("type").$type<"webhook" | "otlp" | "s3" | "langfuse">().notNull(),
    /** The public part of the destination, JSON (traces/destination-config.ts `TargetConfig`). */
    config: text("config").notNull(),
    /** AES-GCM ciphertext with its tag, base64; null when the destination has no secret. */
    secretCiphertext: text("secret_ciphertext"),
    /** The 12-byte AES-GCM nonce, base64. */
    secretIv: text("secret_iv"),
    /** JSON: secret field → its last 4 characters. */
    secretHint: text("secret_hint").notNull().default("{}"),
    /** 0–1, the share of sessions delivered (a hash of the session id, traces/sampling.ts). */
    samplingRate: real("sampling_rate").notNull().default(1),
    /** JSON array of API key ids whose traces are delivered; null: every key. */
    apiKeyIds: text("api_key_ids"),
    /** Deliver no content (input messages, output text), only metadata. */
    privacyMode: integer("privacy_mode", { mode: "boolean" }).notNull().default(false),
    enabled: integer("enabled", { mode: "boolean" }).notNull().default(true),
    createdAt: createdAt(),
    updatedAt: integer("updated_at", { mode: "number" }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.workspaceId, t.id] })],
);

/**
 * Delivery health per destination, for the admin listing. The TRACE_DELIVERIES consumer adds to
 * it with one upsert per destination per batch (not per trace), so D1 sees a few writes a second
 * at most; additions are atomic in SQLite, so concurrent consumer invocations lose no count.
 */
export const traceDeliveryState = sqliteTable(
  "trace_delivery_state",
  {
    workspaceId: text("workspace_id").notNull(),
    destinationId: text("destination_id").notNull(),
    delivered: integer("delivered").notNull().default(0),
    /** Failed attempts (each retry counts once). */
    failed: integer("failed").notNull().default(0),
    lastSuccessAt: integer("last_success_at", { mode: "number" }),
    lastErrorAt: integer("last_error_at", { mode: "number" }),
    lastError: text("last_error"),
  },
  (t) => [
    primaryKey({ columns: [t.workspaceId, t.destinationId] }),
    foreignKey({ columns: [t.workspaceId, t.destinationId], foreignColumns: [traceDestinations.workspaceId, traceDestinations.id] }).onDelete("cascade"),
  ],
);

/**
 * Deliveries (and traces) that exhausted their retries, written by the TRACE_DLQ consumer (or at
 * once for a permanent failure such as a 4xx). An admin lists and replays them; replay re-sends
 * the body to its queue and deletes the row.
 */
export const traceDeadLetters = sqliteTable(
  "trace_dead_letters",
  {
    /**
     * The queue message id (suffixed with the generation, and the destination, when one message
     * stands for several letters): a redelivered dead letter is recorded once.
     */
    id: text("id").primaryKey(),
    workspaceId: text("workspace_id").notNull(),
    /** Null for a trace the TRACES consumer gave up on (before delivering or handing it over). */
    destinationId: text("destination_id"),
    generationId: text("generation_id").notNull(),
    /** The message body as JSON (traces/messages.ts `DeadLetterBody`). */
    body: text("body").notNull(),
    error: text("error"),
    attempts: integer("attempts").notNull(),
    createdAt: createdAt(),
  },
  (t) => [
    index("trace_dead_letters_workspace_idx").on(t.workspaceId, t.createdAt),
    index("trace_dead_letters_destination_idx").on(t.workspaceId, t.destinationId),
  ],
);

export type Generation = typeof generations.$inferSelect;
export type Workspace = typeof workspaces.$inferSelect;
export type ApiKey = typeof apiKeys.$inferSelect;
export type Provider = typeof providers.$inferSelect;
export type Model = typeof models.$inferSelect;
export type Endpoint = typeof endpoints.$inferSelect;
export type ProviderCredential = typeof providerCredentials.$inferSelect;
export type TraceDestinationRow = typeof traceDestinations.$inferSelect;
export type TraceDeadLetter = typeof traceDeadLetters.$inferSelect;
