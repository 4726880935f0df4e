CREATE TABLE `trace_dead_letters` (
	`id` text PRIMARY KEY NOT NULL,
	`workspace_id` text NOT NULL,
	`destination_id` text,
	`generation_id` text NOT NULL,
	`body` text NOT NULL,
	`error` text,
	`attempts` integer NOT NULL,
	`created_at` integer DEFAULT (unixepoch() * 1000) NOT NULL
);
--> statement-breakpoint
CREATE INDEX `trace_dead_letters_workspace_idx` ON `trace_dead_letters` (`workspace_id`,`created_at`);--> statement-breakpoint
CREATE INDEX `trace_dead_letters_destination_idx` ON `trace_dead_letters` (`workspace_id`,`destination_id`);--> statement-breakpoint
CREATE TABLE `trace_delivery_state` (
	`workspace_id` text NOT NULL,
	`destination_id` text NOT NULL,
	`delivered` integer DEFAULT 0 NOT NULL,
	`failed` integer DEFAULT 0 NOT NULL,
	`last_success_at` integer,
	`last_error_at` integer,
	`last_error` text,
	PRIMARY KEY(`workspace_id`, `destination_id`),
	FOREIGN KEY (`workspace_id`,`destination_id`) REFERENCES `trace_destinations`(`workspace_id`,`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE TABLE `trace_destinations` (
	`workspace_id` text NOT NULL,
	`id` text NOT NULL,
	`name` text,
	`type` text NOT NULL,
	`config` text NOT NULL,
	`secret_ciphertext` text,
	`secret_iv` text,
	`secret_hint` text DEFAULT '{}' NOT NULL,
	`sampling_rate` real DEFAULT 1 NOT NULL,
	`api_key_ids` text,
	`privacy_mode` integer DEFAULT false NOT NULL,
	`enabled` integer DEFAULT true NOT NULL,
	`created_at` integer DEFAULT (unixepoch() * 1000) NOT NULL,
	`updated_at` integer NOT NULL,
	PRIMARY KEY(`workspace_id`, `id`),
	FOREIGN KEY (`workspace_id`) REFERENCES `workspaces`(`id`) ON UPDATE no action ON DELETE cascade
);
