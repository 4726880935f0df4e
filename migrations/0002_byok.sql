CREATE TABLE `provider_credentials` (
	`workspace_id` text NOT NULL,
	`provider_slug` text NOT NULL,
	`ciphertext` text NOT NULL,
	`iv` text NOT NULL,
	`last4` text NOT NULL,
	`created_at` integer DEFAULT (unixepoch() * 1000) NOT NULL,
	FOREIGN KEY (`workspace_id`) REFERENCES `workspaces`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`provider_slug`) REFERENCES `providers`(`slug`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `provider_credentials_workspace_provider_idx` ON `provider_credentials` (`workspace_id`,`provider_slug`);