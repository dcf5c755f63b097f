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
