-- name: EventFanOut :many
-- Records a batch of events, one delivery for each endpoint that matches a
-- new event (skipped when the endpoint is disabled), and returns the pending
-- deliveries of the batch that have made no attempt yet: their tasks may not
-- have been published when an earlier try of this batch crashed.
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
           -- prefix pattern ("message.*") and the type itself
           unnest(@patterns::text[]) AS patterns
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
), matching AS (
    SELECT ne.*, string_to_array(i.patterns, ' ') AS patterns
    FROM new_events ne JOIN input i ON i.id = ne.id
), new_deliveries AS (
    INSERT INTO deliveries (event_id, endpoint_id, event_type, status, last_error, completed_at)
    SELECT ne.id, ep.id, ne.type,
           CASE WHEN ep.active THEN 'pending' ELSE 'skipped' END,
           CASE WHEN ep.active THEN '' ELSE 'endpoint disabled' END,
           CASE WHEN ep.active THEN NULL ELSE now() END
    FROM matching ne
    JOIN endpoints ep ON ep.event_types && ne.patterns
    AND (cardinality(ep.filter_provider_ids) = 0
         OR ne.provider_id = ANY (ep.filter_provider_ids))
    AND (cardinality(ep.filter_channel_ids) = 0
         OR ne.channel_id = ANY (ep.filter_channel_ids))
    AND (cardinality(ep.filter_template_ids) = 0
         OR ne.template_id = ANY (ep.filter_template_ids))
    ON CONFLICT (event_id, endpoint_id) DO NOTHING
    RETURNING id, event_id, status
)
SELECT nd.id::bigint AS id, nd.event_id::text AS event_id
FROM new_deliveries nd
WHERE nd.status = 'pending'
UNION ALL
SELECT d.id, d.event_id
FROM input i
JOIN deliveries d ON d.event_id = i.id
WHERE d.status = 'pending'
  AND d.attempt_count = 0;

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
-- Records a batch of events and returns the endpoints each is to go to: for
-- an event recorded now, every matching endpoint; for one recorded before
-- (an earlier try of the same message, or the same id published again), the
-- matching endpoints that existed when it was received, each with the
-- delivery it already has, if any. An event that a transaction still running
-- elsewhere is recording belongs to that transaction and returns nothing.
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
           -- prefix pattern ("message.*") and the type itself
           unnest(@patterns::text[]) AS patterns
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
    RETURNING id, provider_id, channel_id, template_id, received_at
), batch AS (
    -- The statement's snapshot does not see the rows it inserts: known
    -- events are those recorded before it began.
    SELECT ne.id, ne.provider_id, ne.channel_id, ne.template_id, ne.received_at,
           true AS fresh
    FROM new_events ne
    UNION ALL
    SELECT e.id, e.provider_id, e.channel_id, e.template_id, e.received_at, false
    FROM events e
    WHERE e.id = ANY (@ids::text[])
)
SELECT b.id::text AS event_id, b.fresh::boolean AS fresh, ep.id AS endpoint_id,
       ep.updated_at AS endpoint_updated_at, ep.active AS endpoint_active,
       d.id AS delivery_id, d.status, d.attempt_count, d.next_attempt_at
FROM batch b
JOIN input i ON i.id = b.id
JOIN endpoints ep ON ep.event_types && string_to_array(i.patterns, ' ')
    AND ep.created_at <= b.received_at
    AND (cardinality(ep.filter_provider_ids) = 0
         OR b.provider_id = ANY (ep.filter_provider_ids))
    AND (cardinality(ep.filter_channel_ids) = 0
         OR b.channel_id = ANY (ep.filter_channel_ids))
    AND (cardinality(ep.filter_template_ids) = 0
         OR b.template_id = ANY (ep.filter_template_ids))
LEFT JOIN deliveries d ON NOT b.fresh AND d.event_id = b.id AND d.endpoint_id = ep.id;
