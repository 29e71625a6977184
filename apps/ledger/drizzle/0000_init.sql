CREATE TABLE "anchor_outbox" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"anchor" text NOT NULL,
	"checkpoint_size" bigint NOT NULL,
	"state" text NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"next_attempt_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_error" text,
	"receipt" text
);
--> statement-breakpoint
CREATE TABLE "balances" (
	"account" text PRIMARY KEY NOT NULL,
	"balance" bigint NOT NULL,
	"held" bigint NOT NULL,
	"as_of_seq" bigint NOT NULL
);
--> statement-breakpoint
CREATE TABLE "checkpoints" (
	"size" bigint PRIMARY KEY NOT NULL,
	"root" text NOT NULL,
	"note" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "entries" (
	"seq" bigint PRIMARY KEY NOT NULL,
	"event_id" text NOT NULL,
	"kind" text NOT NULL,
	"account" text NOT NULL,
	"delta" bigint NOT NULL,
	"held_delta" bigint NOT NULL,
	"ref" text NOT NULL,
	"meta" text NOT NULL,
	"payload_hash" text NOT NULL,
	"created_at_ms" bigint NOT NULL,
	"prev_hash" text NOT NULL,
	"hash" text NOT NULL,
	CONSTRAINT "entries_seq_nonnegative" CHECK ("entries"."seq" >= 0),
	CONSTRAINT "entries_hashes_hex" CHECK ("entries"."prev_hash" ~ '^[0-9a-f]{64}$' and "entries"."hash" ~ '^[0-9a-f]{64}$')
);
--> statement-breakpoint
CREATE TABLE "head" (
	"id" integer PRIMARY KEY NOT NULL,
	"size" bigint NOT NULL,
	"last_hash" text NOT NULL,
	CONSTRAINT "head_single_row" CHECK ("head"."id" = 1)
);
--> statement-breakpoint
CREATE TABLE "rejections" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"event_id" text NOT NULL,
	"code" text NOT NULL,
	"reason" text NOT NULL,
	"payload_hash" text NOT NULL,
	"payload" text NOT NULL,
	"at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX "anchor_outbox_once" ON "anchor_outbox" USING btree ("anchor","checkpoint_size");--> statement-breakpoint
CREATE INDEX "anchor_outbox_due" ON "anchor_outbox" USING btree ("state","next_attempt_at");--> statement-breakpoint
CREATE UNIQUE INDEX "entries_event_id" ON "entries" USING btree ("event_id");--> statement-breakpoint
CREATE UNIQUE INDEX "entries_prev_hash" ON "entries" USING btree ("prev_hash");--> statement-breakpoint
CREATE UNIQUE INDEX "entries_hash" ON "entries" USING btree ("hash");--> statement-breakpoint
CREATE INDEX "entries_account_seq" ON "entries" USING btree ("account","seq");--> statement-breakpoint
CREATE INDEX "entries_ref" ON "entries" USING btree ("ref");--> statement-breakpoint
CREATE UNIQUE INDEX "entries_hold_closed_once" ON "entries" USING btree ("ref") WHERE kind in ('settle', 'void');--> statement-breakpoint
CREATE INDEX "rejections_event_id" ON "rejections" USING btree ("event_id");