CREATE TABLE "join_tokens" (
	"id" text PRIMARY KEY NOT NULL,
	"token_hash" text NOT NULL,
	"owner" text,
	"reusable" boolean DEFAULT false NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"used_at" timestamp with time zone,
	"uses" integer DEFAULT 0 NOT NULL,
	CONSTRAINT "join_tokens_token_hash_unique" UNIQUE("token_hash")
);
--> statement-breakpoint
CREATE TABLE "machines" (
	"id" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"owner" text NOT NULL,
	"mesh_index" integer NOT NULL,
	"wireguard_public_key" text NOT NULL,
	"identity_public_key" text NOT NULL,
	"endpoints" jsonb NOT NULL,
	"enrolled_at" timestamp with time zone NOT NULL,
	"key_rotated_at" timestamp with time zone,
	"last_heartbeat_at" timestamp with time zone,
	"reported_wireguard_key" text,
	CONSTRAINT "machines_name_unique" UNIQUE("name"),
	CONSTRAINT "machines_mesh_index_unique" UNIQUE("mesh_index"),
	CONSTRAINT "machines_wireguard_public_key_unique" UNIQUE("wireguard_public_key"),
	CONSTRAINT "mesh_index_in_range" CHECK ("machines"."mesh_index" between 1 and 4194302)
);
--> statement-breakpoint
CREATE TABLE "roster_version" (
	"id" integer PRIMARY KEY NOT NULL,
	"version" bigint NOT NULL,
	CONSTRAINT "roster_version_one_row" CHECK ("roster_version"."id" = 1)
);
