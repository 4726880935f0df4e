CREATE TABLE `api_keys` (
	`id` text PRIMARY KEY NOT NULL,
	`workspace_id` text NOT NULL,
	`name` text NOT NULL,
	`hash` text NOT NULL,
	`label` text NOT NULL,
	`disabled` integer DEFAULT false NOT NULL,
	`expires_at` integer,
	`created_at` integer DEFAULT (unixepoch() * 1000) NOT NULL,
	FOREIGN KEY (`workspace_id`) REFERENCES `workspaces`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `api_keys_hash_idx` ON `api_keys` (`hash`);--> statement-breakpoint
CREATE INDEX `api_keys_workspace_idx` ON `api_keys` (`workspace_id`);--> statement-breakpoint
CREATE TABLE `endpoints` (
	`id` text PRIMARY KEY NOT NULL,
	`model_id` text NOT NULL,
	`provider_slug` text NOT NULL,
	`upstream_model` text NOT NULL,
	`prompt_price` integer NOT NULL,
	`completion_price` integer NOT NULL,
	`cache_read_price` integer,
	`cache_write_price` integer,
	`request_price` integer DEFAULT 0 NOT NULL,
	`context_length` integer NOT NULL,
	`max_output_tokens` integer,
	`quantization` text DEFAULT 'unknown' NOT NULL,
	`supported_parameters` text DEFAULT '[]' NOT NULL,
	`region` text,
	`enabled` integer DEFAULT true NOT NULL,
	`created_at` integer DEFAULT (unixepoch() * 1000) NOT NULL,
	FOREIGN KEY (`model_id`) REFERENCES `models`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`provider_slug`) REFERENCES `providers`(`slug`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `endpoints_model_provider_idx` ON `endpoints` (`model_id`,`provider_slug`);--> statement-breakpoint
CREATE INDEX `endpoints_model_idx` ON `endpoints` (`model_id`);--> statement-breakpoint
CREATE TABLE `models` (
	`id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`description` text DEFAULT '' NOT NULL,
	`context_length` integer NOT NULL,
	`input_modalities` text DEFAULT '["text"]' NOT NULL,
	`output_modalities` text DEFAULT '["text"]' NOT NULL,
	`supported_parameters` text DEFAULT '[]' NOT NULL,
	`tokenizer` text DEFAULT 'Other' NOT NULL,
	`created_at` integer DEFAULT (unixepoch() * 1000) NOT NULL
);
--> statement-breakpoint
CREATE TABLE `providers` (
	`slug` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`family` text NOT NULL,
	`env_prefix` text NOT NULL,
	`base_url` text,
	`region` text DEFAULT 'global' NOT NULL,
	`retains_prompts` integer DEFAULT false NOT NULL,
	`trains_on_data` integer DEFAULT false NOT NULL,
	`zero_retention` integer DEFAULT false NOT NULL,
	`options` text DEFAULT '{}' NOT NULL,
	`created_at` integer DEFAULT (unixepoch() * 1000) NOT NULL
);
--> statement-breakpoint
CREATE TABLE `workspaces` (
	`id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`default_model` text,
	`created_at` integer DEFAULT (unixepoch() * 1000) NOT NULL
);
