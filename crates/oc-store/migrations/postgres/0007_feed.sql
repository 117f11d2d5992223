-- Events that the webhook never sends (a type outside `event.notification.eventTypes`, or an instance without a
-- callback URL: its changes go to the feed only) are committed `withheld`: kept and listed like any other, never
-- batched into a notification (they are also `dropped`, so the batcher's index skips them).
ALTER TABLE events ADD COLUMN withheld BOOLEAN NOT NULL DEFAULT FALSE;
-- The change feed's floor: the highest event `seq` of the instance that retention removed. A cursor below it
-- would skip changes, so it answers `410 cursor_expired` instead.
ALTER TABLE instances ADD COLUMN feed_floor BIGINT NOT NULL DEFAULT 0;
