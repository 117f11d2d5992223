-- The W3C `traceparent` of the poll that committed an event (NULL when traces are off): a delivery attempt of
-- the notification carrying it continues the poll's trace, on whichever node it runs.
ALTER TABLE events ADD COLUMN trace_parent TEXT;
