-- name: EndpointInsert :one
INSERT INTO endpoints (
    id, url, description, event_types, filter_provider_ids, filter_channel_ids,
    filter_template_ids, headers, signature_scheme, secrets, active, disabled_reason,
    retry_policy, timeout_ms, rate_limit
) VALUES (
    @id, @url, @description, @event_types, @filter_provider_ids, @filter_channel_ids,
    @filter_template_ids, @headers, @signature_scheme, @secrets, @active, @disabled_reason,
    sqlc.narg(retry_policy), sqlc.narg(timeout_ms), sqlc.narg(rate_limit)
)
RETURNING *;

-- name: EndpointGet :one
SELECT * FROM endpoints WHERE id = @id;

-- name: EndpointList :many
-- Newest first; the cursor is the (created_at, id) of the last row seen.
SELECT * FROM endpoints
WHERE (sqlc.narg(cursor_created_at)::timestamptz IS NULL
       OR (created_at, id) < (sqlc.narg(cursor_created_at)::timestamptz, @cursor_id::text))
  AND (sqlc.narg(active)::boolean IS NULL OR active = sqlc.narg(active)::boolean)
  -- endpoints subscribed to an event type: any of the type's patterns
  AND (sqlc.narg(patterns)::text[] IS NULL OR event_types && sqlc.narg(patterns)::text[])
ORDER BY created_at DESC, id DESC
LIMIT @max_rows;

-- name: EndpointDisable :exec
UPDATE endpoints
SET active = false, disabled_reason = @reason, updated_at = now()
WHERE id = @id;

-- name: EndpointUpdate :one
UPDATE endpoints
SET url = @url, description = @description, event_types = @event_types,
    filter_provider_ids = @filter_provider_ids, filter_channel_ids = @filter_channel_ids,
    filter_template_ids = @filter_template_ids, headers = @headers,
    signature_scheme = @signature_scheme, secrets = @secrets,
    secrets_expire_at = sqlc.narg(secrets_expire_at), active = @active,
    disabled_reason = @disabled_reason,
    failing_since = CASE WHEN @active::boolean THEN NULL ELSE failing_since END,
    retry_policy = sqlc.narg(retry_policy), timeout_ms = sqlc.narg(timeout_ms),
    rate_limit = sqlc.narg(rate_limit), updated_at = now()
WHERE id = @id
RETURNING *;

-- name: EndpointRotateSecret :one
-- Puts a new secret first; the previous current secret keeps signing until
-- the grace period ends. Secrets already past their grace period are dropped.
UPDATE endpoints
SET secrets = ARRAY[@secret::text] || secrets[1:1],
    secrets_expire_at = now() + make_interval(secs => @grace_seconds::float8),
    updated_at = now()
WHERE id = @id
RETURNING *;

-- name: EndpointDelete :one
DELETE FROM endpoints WHERE id = @id RETURNING id;

-- name: EndpointEncryptedSecrets :one
-- The secrets of one endpoint stored encrypted, if any: enough to check at
-- start-up that the key in use can read them.
SELECT id, secrets FROM endpoints
WHERE EXISTS (SELECT 1 FROM unnest(secrets) AS s (v) WHERE s.v LIKE 'enc:v1:%')
LIMIT 1;

-- name: EndpointListByIDs :many
SELECT * FROM endpoints WHERE id = ANY (@ids::text[]);
