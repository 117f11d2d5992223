-- A claimed job's `next_run_at` is its lease's expiry while the lease lasts (claims and renewals set both), and
-- `due_at` keeps when it was due: the claim query's range scan of `poll_jobs_due` then stops at the jobs really
-- due instead of stepping over every leased one (polls running, and polls waiting for their business's budget).
-- Releasing a lease (shutdown, a node taken over) puts `next_run_at` back to `due_at`.
ALTER TABLE poll_jobs ADD COLUMN due_at BIGINT;
