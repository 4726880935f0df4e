-- generations as a WITHOUT ROWID table keyed by (workspace_id, id), with no secondary index: D1
-- bills every row written and counts each index entry as one, so an insert now costs 1 row
-- instead of 3 (the row, the implicit unique index of the TEXT primary key, and
-- generations_workspace_idx, which DROP TABLE removes). Generation ids are
-- `gen-<unix seconds>-<hex>`, so a workspace's records sort by time inside the key and the
-- residency report seeks by id (src/residency/report.ts). drizzle-kit cannot express WITHOUT
-- ROWID: it generated this rebuild, and `WITHOUT ROWID` was added by hand (src/db/schema.ts).
CREATE TABLE `__new_generations` (
	`id` text NOT NULL,
	`workspace_id` text NOT NULL,
	`key_id` text NOT NULL,
	`request_id` text NOT NULL,
	`model` text NOT NULL,
	`provider_name` text NOT NULL,
	`endpoint_id` text NOT NULL,
	`upstream_model` text NOT NULL,
	`streamed` integer NOT NULL,
	`cancelled` integer DEFAULT false NOT NULL,
	`is_byok` integer DEFAULT false NOT NULL,
	`finish_reason` text,
	`native_finish_reason` text,
	`tokens_prompt` integer NOT NULL,
	`tokens_completion` integer NOT NULL,
	`tokens_cached` integer NOT NULL,
	`tokens_cache_write` integer NOT NULL,
	`tokens_reasoning` integer NOT NULL,
	`cost_micros` integer NOT NULL,
	`upstream_cost_micros` integer NOT NULL,
	`latency_ms` integer NOT NULL,
	`ttft_ms` integer,
	`generation_time_ms` integer,
	`attempts` integer NOT NULL,
	`ingress_region` text,
	`endpoint_region` text,
	`excluded_count` integer,
	`route` text,
	`created_at` integer DEFAULT (unixepoch() * 1000) NOT NULL,
	PRIMARY KEY(`workspace_id`, `id`)
) WITHOUT ROWID;
--> statement-breakpoint
INSERT INTO `__new_generations`("id", "workspace_id", "key_id", "request_id", "model", "provider_name", "endpoint_id", "upstream_model", "streamed", "cancelled", "is_byok", "finish_reason", "native_finish_reason", "tokens_prompt", "tokens_completion", "tokens_cached", "tokens_cache_write", "tokens_reasoning", "cost_micros", "upstream_cost_micros", "latency_ms", "ttft_ms", "generation_time_ms", "attempts", "ingress_region", "endpoint_region", "excluded_count", "route", "created_at") SELECT "id", "workspace_id", "key_id", "request_id", "model", "provider_name", "endpoint_id", "upstream_model", "streamed", "cancelled", "is_byok", "finish_reason", "native_finish_reason", "tokens_prompt", "tokens_completion", "tokens_cached", "tokens_cache_write", "tokens_reasoning", "cost_micros", "upstream_cost_micros", "latency_ms", "ttft_ms", "generation_time_ms", "attempts", "ingress_region", "endpoint_region", "excluded_count", "route", "created_at" FROM `generations`;--> statement-breakpoint
DROP TABLE `generations`;--> statement-breakpoint
ALTER TABLE `__new_generations` RENAME TO `generations`;
