-- Delivery history at scale (checked with EXPLAIN on a million deliveries).
--
-- Time windows (since/until) and retention: a window's rows are found by
-- created_at, and its id range read from this index alone (index-only),
-- so that a window far in the past is not reached by walking the primary
-- key through every newer row. Retention deletes the oldest rows through it.
CREATE INDEX deliveries_created ON deliveries (created_at, id);

-- An endpoint's deliveries of one status (the list filtered by both, and an
-- endpoint's recovery of its failed deliveries), newest first. Neither
-- deliveries_endpoint nor deliveries_status_id alone finds a rare status of
-- a busy endpoint without reading most of the endpoint's rows.
CREATE INDEX deliveries_endpoint_status ON deliveries (endpoint_id, status, id DESC);

-- Retention of rejected messages.
CREATE INDEX rejected_messages_received ON rejected_messages (received_at);
