CREATE TABLE `generations` (
	`id` text PRIMARY KEY NOT NULL,
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
	`created_at` integer DEFAULT (unixepoch() * 1000) NOT NULL
);
--> statement-breakpoint
CREATE INDEX `generations_workspace_idx` ON `generations` (`workspace_id`,`created_at`);--> statement-breakpoint
ALTER TABLE `api_keys` ADD `kind` text DEFAULT 'inference' NOT NULL;--> statement-breakpoint
ALTER TABLE `api_keys` ADD `limit_micros` integer;--> statement-breakpoint
ALTER TABLE `api_keys` ADD `limit_reset` text;--> statement-breakpoint
ALTER TABLE `api_keys` ADD `include_byok_in_limit` integer DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE `api_keys` ADD `rpm` integer;--> statement-breakpoint
ALTER TABLE `api_keys` ADD `tpm` integer;--> statement-breakpoint
ALTER TABLE `api_keys` ADD `concurrency` integer;--> statement-breakpoint
ALTER TABLE `workspaces` ADD `rpm` integer;--> statement-breakpoint
ALTER TABLE `workspaces` ADD `tpm` integer;--> statement-breakpoint
ALTER TABLE `workspaces` ADD `concurrency` integer;