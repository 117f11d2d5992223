-- Claims read due notifications in order from an index and stop at their limit; the notification index of
-- events leaves out unbatched events, so a poll commit does not write it.
DROP INDEX notifications_due;
CREATE INDEX notifications_due ON notifications (status, next_attempt_at, nseq);
CREATE INDEX notifications_lease ON notifications (status, lease_expires_at, nseq);
DROP INDEX events_notification;
CREATE INDEX events_notification ON events (notification_id) WHERE notification_id IS NOT NULL;
