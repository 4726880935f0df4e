ALTER TABLE `generations` ADD `ingress_region` text;--> statement-breakpoint
ALTER TABLE `generations` ADD `endpoint_region` text;--> statement-breakpoint
ALTER TABLE `generations` ADD `excluded_count` integer;--> statement-breakpoint
ALTER TABLE `generations` ADD `route` text;--> statement-breakpoint
ALTER TABLE `workspaces` ADD `region` text DEFAULT 'global' NOT NULL;--> statement-breakpoint
ALTER TABLE `workspaces` ADD `allow_non_eu_ingress` integer DEFAULT false NOT NULL;