-- A claimed job's `next_run_at` is its lease's expiry while the lease lasts (claims and renewals set both), and
-- `due_at` keeps when it was due: the claim query's range scan of `poll_jobs_due` then stops at the jobs really
-- due instead of stepping over every leased one (polls running, and polls waiting for their business's budget).
-- Releasing a lease (shutdown, a node taken over) puts `next_run_at` back to `due_at`.
ALTER TABLE poll_jobs ADD COLUMN due_at BIGINT;
-- The claim orders by (next_run_at, id): with the id in the index the scan stops at the LIMIT instead of sorting
-- every due job of an equal next_run_at (SQLite's index carries the rowid, which is the id, already).
CREATE INDEX poll_jobs_due_id ON poll_jobs (next_run_at, id);
DROP INDEX poll_jobs_due;
