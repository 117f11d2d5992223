-- A backfill given to a resource that is already polled replays it: the job remembers the backfill applied, and
-- `reseed` asks the engine to rebuild its "already notified" set from the outbox before the replay. A resource
-- that reconciles deletions (no deleted feed) remembers when its last complete id scan ran (provider clock) and
-- the ids live after it (one per line), the baseline of the next scan.
ALTER TABLE poll_jobs ADD COLUMN backfill TEXT;
ALTER TABLE poll_jobs ADD COLUMN reseed BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE poll_jobs ADD COLUMN reconciled_at TEXT;
ALTER TABLE poll_jobs ADD COLUMN reconciled_ids TEXT;
-- Jobs of earlier versions: their backfill is not known (''), so a later change of it never replays.
UPDATE poll_jobs SET backfill = '';
