-- Event lists filtered by one metadata value, newest first: each index leads
-- with its column and follows the list order, so a page is an index range
-- scan. Partial, since most events lack some of these keys.
CREATE INDEX events_provider ON events (provider_id, received_at DESC, id DESC)
    WHERE provider_id IS NOT NULL;
CREATE INDEX events_message ON events (message_id, received_at DESC, id DESC)
    WHERE message_id IS NOT NULL;
CREATE INDEX events_organization ON events (organization_id, received_at DESC, id DESC)
    WHERE organization_id IS NOT NULL;
-- The type filter's index (events_type) lacks the id tie-break of the cursor.
CREATE INDEX events_type_received ON events (type, received_at DESC, id DESC);
DROP INDEX events_type;
