-- name: EventGet :one
SELECT * FROM events WHERE id = @id;

-- name: EventList :many
-- Newest first, every filter optional; the cursor is the (received_at, id)
-- of the last event of the previous page. The metadata filters each have an
-- index led by their column (0002_event_indexes.sql).
SELECT * FROM events
WHERE (sqlc.narg(type)::text IS NULL OR type = sqlc.narg(type)::text)
  AND (sqlc.narg(provider_id)::text IS NULL OR provider_id = sqlc.narg(provider_id)::text)
  AND (sqlc.narg(message_id)::text IS NULL OR message_id = sqlc.narg(message_id)::text)
  AND (sqlc.narg(organization_id)::text IS NULL
       OR organization_id = sqlc.narg(organization_id)::text)
  AND (sqlc.narg(since)::timestamptz IS NULL OR received_at >= sqlc.narg(since)::timestamptz)
  AND (sqlc.narg(until)::timestamptz IS NULL OR received_at < sqlc.narg(until)::timestamptz)
  AND (sqlc.narg(cursor_received_at)::timestamptz IS NULL
       OR (received_at, id) < (sqlc.narg(cursor_received_at)::timestamptz, @cursor_id::text))
ORDER BY received_at DESC, id DESC
LIMIT @max_rows;

-- name: EventClaim :many
-- Records a batch of events and returns, for each event recorded now, the
-- endpoints it goes to: one row per matching endpoint, or one row without
-- an endpoint when none matches. An event of the batch with no row was
-- recorded before (EventClaimKnown answers for it), or is being recorded by
-- a transaction still running elsewhere. The statement's plan may be
-- prepared once (db.OpenPipeline): it reads no table whose size changes the
-- plan.
WITH input AS (
    SELECT unnest(@ids::text[]) AS id,
           unnest(@types::text[]) AS type,
           unnest(@occurred_ats::timestamptz[]) AS occurred_at,
           unnest(@provider_ids::text[]) AS provider_id,
           unnest(@channel_ids::text[]) AS channel_id,
           unnest(@template_ids::text[]) AS template_id,
           unnest(@message_ids::text[]) AS message_id,
           unnest(@organization_ids::text[]) AS organization_id,
           unnest(@bodies::bytea[]) AS body,
           -- the subscription patterns that match the type: "*", every
           -- prefix pattern ("message.*") and the type itself, split once
           -- here rather than for every endpoint compared
           string_to_array(unnest(@patterns::text[]), ' ') AS patterns
), new_events AS (
    INSERT INTO events (
        id, type, occurred_at, provider_id, channel_id, template_id, message_id,
        organization_id, body
    )
    SELECT id, type, occurred_at, NULLIF(provider_id, ''), NULLIF(channel_id, ''),
           NULLIF(template_id, ''), NULLIF(message_id, ''), NULLIF(organization_id, ''),
           body
    FROM input
    ON CONFLICT (id) DO NOTHING
    RETURNING id, type, provider_id, channel_id, template_id
), candidates AS MATERIALIZED (
    -- the endpoints subscribed to each type of the batch: compared once
    -- per type rather than once per event
    SELECT t.type, ep.id, ep.updated_at, ep.active, ep.filter_provider_ids,
           ep.filter_channel_ids, ep.filter_template_ids
    FROM (SELECT DISTINCT ON (type) type, patterns FROM input) t
    JOIN endpoints ep ON ep.event_types && t.patterns
)
SELECT ne.id::text AS event_id, c.id AS endpoint_id, c.updated_at AS endpoint_updated_at,
       c.active AS endpoint_active
FROM new_events ne
LEFT JOIN candidates c ON c.type = ne.type
    AND (cardinality(c.filter_provider_ids) = 0
         OR ne.provider_id = ANY (c.filter_provider_ids))
    AND (cardinality(c.filter_channel_ids) = 0
         OR ne.channel_id = ANY (c.filter_channel_ids))
    AND (cardinality(c.filter_template_ids) = 0
         OR ne.template_id = ANY (c.filter_template_ids));

-- name: EventClaimKnown :many
-- For events recorded before (an earlier try of the same message, or the
-- same id published again): the matching endpoints that existed when each
-- was received, with the delivery each already has, if any. A message
-- whose type is not the recorded event's (an id used again for another
-- event) matches none: the recorded event is the one delivered, and its
-- endpoints were matched by its own type.
WITH input AS (
    SELECT unnest(@ids::text[]) AS id,
           unnest(@types::text[]) AS type,
           string_to_array(unnest(@patterns::text[]), ' ') AS patterns
)
SELECT e.id AS event_id, ep.id AS endpoint_id, ep.updated_at AS endpoint_updated_at,
       ep.active AS endpoint_active, d.id AS delivery_id, d.status, d.attempt_count,
       d.next_attempt_at
FROM events e
JOIN input i ON i.id = e.id AND i.type = e.type
JOIN endpoints ep ON ep.event_types && i.patterns
    AND ep.created_at <= e.received_at
    AND (cardinality(ep.filter_provider_ids) = 0
         OR e.provider_id = ANY (ep.filter_provider_ids))
    AND (cardinality(ep.filter_channel_ids) = 0
         OR e.channel_id = ANY (ep.filter_channel_ids))
    AND (cardinality(ep.filter_template_ids) = 0
         OR e.template_id = ANY (ep.filter_template_ids))
LEFT JOIN deliveries d ON d.event_id = e.id AND d.endpoint_id = ep.id;
