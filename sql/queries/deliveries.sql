-- name: DeliveryListForAttempt :many
-- What the delivery stage needs to make an attempt for each task of a batch.
SELECT d.id, d.event_id, d.endpoint_id, d.event_type, d.status, d.attempt_count,
       d.next_attempt_at, ev.body,
       ep.url, ep.headers, ep.signature_scheme, ep.secrets, ep.secrets_expire_at,
       ep.active, ep.retry_policy, ep.timeout_ms, ep.rate_limit
FROM deliveries d
JOIN events ev ON ev.id = d.event_id
LEFT JOIN endpoints ep ON ep.id = d.endpoint_id
WHERE d.id = ANY (@ids::bigint[]);

-- name: DeliveryRecordAttempts :many
-- Records a batch of attempts and their deliveries' new state in one round
-- trip. A row is recorded only when its attempt is the delivery's next one,
-- so a stale or repeated task changes nothing; the ids recorded are returned.
WITH input AS (
    SELECT unnest(@delivery_ids::bigint[]) AS delivery_id,
           unnest(@numbers::int[]) AS number,
           unnest(@started_ats::timestamptz[]) AS started_at,
           unnest(@duration_ms::int[]) AS duration_ms,
           unnest(@status_codes::int[]) AS status_code,
           unnest(@response_bodies::text[]) AS response_body,
           unnest(@errors::text[]) AS error,
           unnest(@statuses::text[]) AS status,
           unnest(@next_attempt_ats::timestamptz[]) AS next_attempt_at,
           unnest(@endpoint_ids::text[]) AS endpoint_id
), updated AS (
    UPDATE deliveries d
    SET status = i.status,
        attempt_count = i.number,
        next_attempt_at = CASE WHEN i.status = 'pending' THEN i.next_attempt_at END,
        last_status_code = NULLIF(i.status_code, 0),
        last_error = i.error,
        updated_at = now(),
        completed_at = CASE WHEN i.status = 'pending' THEN NULL ELSE now() END
    FROM input i
    WHERE d.id = i.delivery_id
      AND d.attempt_count = i.number - 1
      AND d.status = 'pending'
    RETURNING d.id
), attempts AS (
    INSERT INTO delivery_attempts (
        delivery_id, number, started_at, duration_ms, status_code, response_body, error
    )
    SELECT i.delivery_id, i.number, i.started_at, i.duration_ms, NULLIF(i.status_code, 0),
           i.response_body, i.error
    FROM input i
    WHERE i.delivery_id IN (SELECT id FROM updated)
    ON CONFLICT (delivery_id, number) DO NOTHING
), health AS (
    -- Per endpoint: did any attempt of the batch succeed?
    SELECT i.endpoint_id, bool_or(i.status = 'succeeded') AS ok
    FROM input i
    WHERE i.delivery_id IN (SELECT id FROM updated)
    GROUP BY i.endpoint_id
), endpoint_health AS (
    -- An endpoint's failing streak starts at its first failure and ends at a
    -- success; one failing for longer than the disable span (0: never) is
    -- disabled. Only rows whose state changes are written.
    UPDATE endpoints ep
    SET failing_since = CASE WHEN h.ok THEN NULL ELSE coalesce(ep.failing_since, now()) END,
        active = ep.active AND NOT h.expired,
        disabled_reason = CASE
            WHEN h.expired AND ep.active
            THEN 'failing continuously since ' || to_char(ep.failing_since AT TIME ZONE 'UTC',
                 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
            ELSE ep.disabled_reason END,
        updated_at = now()
    FROM (
        SELECT h.endpoint_id, h.ok,
               NOT h.ok AND @disable_after_secs::float8 > 0
               AND coalesce(e.failing_since < now() - make_interval(secs => @disable_after_secs::float8),
                            false) AS expired
        FROM health h JOIN endpoints e ON e.id = h.endpoint_id
    ) h
    WHERE ep.id = h.endpoint_id
      AND ((h.ok AND ep.failing_since IS NOT NULL)
           OR (NOT h.ok AND ep.failing_since IS NULL)
           OR (h.expired AND ep.active))
)
SELECT id FROM updated;

-- name: DeliveryRecordNew :many
-- Records the deliveries of fanned-out events in one round trip, each in the
-- state its first attempt left it, with that attempt; a delivery handed to
-- the delivery stage without an attempt is recorded pending. A delivery that
-- exists already is left as it is (another try of the same event recorded
-- it first), unless it is pending with no attempt made; the deliveries
-- recorded are returned. Endpoint health is kept
-- as DeliveryRecordAttempts keeps it.
WITH input AS (
    SELECT unnest(@event_ids::text[]) AS event_id,
           unnest(@endpoint_ids::text[]) AS endpoint_id,
           unnest(@event_types::text[]) AS event_type,
           unnest(@statuses::text[]) AS status,
           unnest(@attempted::bool[]) AS attempted,
           unnest(@started_ats::timestamptz[]) AS started_at,
           unnest(@duration_ms::int[]) AS duration_ms,
           unnest(@status_codes::int[]) AS status_code,
           unnest(@response_bodies::text[]) AS response_body,
           unnest(@errors::text[]) AS error,
           unnest(@next_attempt_ats::timestamptz[]) AS next_attempt_at,
           unnest(@known::bool[]) AS known
), live AS (
    -- The events recorded before this process's claim that get deliveries
    -- here, locked so that retention cannot delete them meanwhile (see
    -- RetentionDeleteEvents); one it deleted first is not returned. The
    -- other events were recorded by the claim moments ago, far younger
    -- than any retention cutoff, and are not looked up.
    SELECT e.id FROM events e
    WHERE e.id IN (SELECT event_id FROM input WHERE known)
    FOR KEY SHARE
), inserted AS (
    INSERT INTO deliveries (
        event_id, endpoint_id, event_type, status, attempt_count, next_attempt_at,
        last_status_code, last_error, completed_at
    )
    SELECT event_id, endpoint_id, event_type, status,
           CASE WHEN attempted THEN 1 ELSE 0 END,
           -- the zero time: due now, nothing scheduled
           CASE WHEN status = 'pending'
                THEN NULLIF(next_attempt_at, '0001-01-01 00:00:00Z') END,
           NULLIF(status_code, 0), error,
           CASE WHEN status = 'pending' THEN NULL ELSE now() END
    FROM input
    WHERE NOT known OR event_id IN (SELECT id FROM live)
    -- A first attempt is recorded over a delivery that another try of the
    -- event left pending without an attempt: that try's task then finds
    -- the attempt made and is dropped.
    ON CONFLICT (event_id, endpoint_id) DO UPDATE
    SET status = excluded.status, attempt_count = 1,
        next_attempt_at = excluded.next_attempt_at,
        last_status_code = excluded.last_status_code, last_error = excluded.last_error,
        updated_at = now(), completed_at = excluded.completed_at
    WHERE deliveries.status = 'pending' AND deliveries.attempt_count = 0
      AND excluded.attempt_count = 1
    RETURNING id, event_id, endpoint_id
), recorded AS (
    SELECT ins.id, i.endpoint_id, i.status, i.started_at, i.duration_ms, i.status_code,
           i.response_body, i.error
    FROM inserted ins
    JOIN input i ON i.event_id = ins.event_id AND i.endpoint_id = ins.endpoint_id
    WHERE i.attempted
), attempts AS (
    INSERT INTO delivery_attempts (
        delivery_id, number, started_at, duration_ms, status_code, response_body, error
    )
    SELECT r.id, 1, r.started_at, r.duration_ms, NULLIF(r.status_code, 0), r.response_body,
           r.error
    FROM recorded r
), health AS (
    SELECT r.endpoint_id, bool_or(r.status = 'succeeded') AS ok
    FROM recorded r
    GROUP BY r.endpoint_id
), endpoint_health AS (
    UPDATE endpoints ep
    SET failing_since = CASE WHEN h.ok THEN NULL ELSE coalesce(ep.failing_since, now()) END,
        active = ep.active AND NOT h.expired,
        disabled_reason = CASE
            WHEN h.expired AND ep.active
            THEN 'failing continuously since ' || to_char(ep.failing_since AT TIME ZONE 'UTC',
                 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
            ELSE ep.disabled_reason END,
        updated_at = now()
    FROM (
        SELECT h.endpoint_id, h.ok,
               NOT h.ok AND @disable_after_secs::float8 > 0
               AND coalesce(e.failing_since < now() - make_interval(secs => @disable_after_secs::float8),
                            false) AS expired
        FROM health h JOIN endpoints e ON e.id = h.endpoint_id
    ) h
    WHERE ep.id = h.endpoint_id
      AND ((h.ok AND ep.failing_since IS NOT NULL)
           OR (NOT h.ok AND ep.failing_since IS NULL)
           OR (h.expired AND ep.active))
)
SELECT id, event_id, endpoint_id FROM inserted;

-- name: DeliveryMarkSkipped :exec
UPDATE deliveries
SET status = 'skipped', last_error = @reason, next_attempt_at = NULL,
    updated_at = now(), completed_at = now()
WHERE id = ANY (@ids::bigint[]) AND status = 'pending';

-- name: DeliveryGet :one
SELECT * FROM deliveries WHERE id = @id;

-- name: DeliveryList :many
-- Newest first, every filter optional; the cursor is the last id seen.
SELECT * FROM deliveries
WHERE (sqlc.narg(endpoint_id)::text IS NULL OR endpoint_id = sqlc.narg(endpoint_id)::text)
  AND (sqlc.narg(event_id)::text IS NULL OR event_id = sqlc.narg(event_id)::text)
  AND (sqlc.narg(event_type)::text IS NULL OR event_type = sqlc.narg(event_type)::text)
  AND (sqlc.narg(status)::text IS NULL OR status = sqlc.narg(status)::text)
  AND (sqlc.narg(since)::timestamptz IS NULL OR created_at >= sqlc.narg(since)::timestamptz)
  AND (sqlc.narg(until)::timestamptz IS NULL OR created_at < sqlc.narg(until)::timestamptz)
  AND (sqlc.narg(before_id)::bigint IS NULL OR id < sqlc.narg(before_id)::bigint)
ORDER BY id DESC
LIMIT @max_rows;

-- name: DeliverySkipPendingByEndpoint :execrows
UPDATE deliveries
SET status = 'skipped', last_error = @reason, next_attempt_at = NULL,
    updated_at = now(), completed_at = now()
WHERE endpoint_id = @endpoint_id AND status = 'pending';

-- name: DeliveryRequeue :one
-- Makes a delivery that has not succeeded due again now. Its next attempt
-- is the one after those already made.
UPDATE deliveries
SET status = 'pending', next_attempt_at = now(), completed_at = NULL, updated_at = now()
WHERE id = @id AND status <> 'succeeded'
RETURNING id, attempt_count;

-- name: DeliveryRequeueFailedByEndpoint :many
-- The deliveries that failed, and those skipped while the endpoint was
-- disabled (not those of an endpoint deleted before one of the same id was
-- created).
UPDATE deliveries
SET status = 'pending', next_attempt_at = now(), completed_at = NULL, updated_at = now()
WHERE endpoint_id = @endpoint_id AND created_at >= @since
  AND (status = 'failed' OR status = 'skipped' AND last_error IS DISTINCT FROM 'endpoint deleted')
RETURNING id, attempt_count;

-- name: DeliveryListWindowProbe :many
-- A page of a list with a time window (since, until), looked for only among
-- the next @probe_rows deliveries below the cursor that pass the other
-- filters, read in id order: cheap where the window is dense below the
-- cursor, as with a recent window or a later page. A full page is the exact
-- answer; a shorter one proves nothing, and DeliveryListWindow answers.
SELECT p.id, p.event_id, p.endpoint_id, p.event_type, p.status, p.attempt_count,
       p.next_attempt_at, p.last_status_code, p.last_error, p.created_at, p.updated_at,
       p.completed_at
FROM (
    SELECT * FROM deliveries
    WHERE (sqlc.narg(endpoint_id)::text IS NULL OR endpoint_id = sqlc.narg(endpoint_id)::text)
      AND (sqlc.narg(event_type)::text IS NULL OR event_type = sqlc.narg(event_type)::text)
      AND (sqlc.narg(status)::text IS NULL OR status = sqlc.narg(status)::text)
      AND (sqlc.narg(before_id)::bigint IS NULL OR id < sqlc.narg(before_id)::bigint)
    ORDER BY id DESC
    LIMIT @probe_rows::int
) p
WHERE (sqlc.narg(since)::timestamptz IS NULL OR p.created_at >= sqlc.narg(since)::timestamptz)
  AND (sqlc.narg(until)::timestamptz IS NULL OR p.created_at < sqlc.narg(until)::timestamptz)
ORDER BY p.id DESC
LIMIT @max_rows;

-- name: DeliveryListWindow :many
-- A page of a list with a time window, exactly, at a bounded cost: the page
-- is read newest first within the id range of the window's rows below the
-- cursor. Ids follow created_at (both are taken as a row is inserted; the
-- time at its transaction's start), so each bound is first looked for among
-- the rows of the hour inside that edge of the window, through
-- deliveries_created alone; only when that hour holds no row is the whole
-- window scanned. A row could escape only through a transaction over an hour
-- long, which hookrelay never holds. "id + 0" keeps the planner from walking
-- the primary key instead.
WITH edge AS (
    SELECT sqlc.narg(since)::timestamptz AS since, sqlc.narg(until)::timestamptz AS until,
           coalesce(sqlc.narg(before_id)::bigint, 9223372036854775807) AS before
), bounds AS (
    SELECT
        CASE WHEN e.since IS NULL THEN 0 ELSE coalesce(
            (SELECT min(id + 0) FROM deliveries
             WHERE created_at >= e.since AND created_at < e.since + interval '1 hour'
               AND (e.until IS NULL OR created_at < e.until) AND id < e.before),
            (SELECT min(id + 0) FROM deliveries
             WHERE created_at >= e.since AND (e.until IS NULL OR created_at < e.until)
               AND id < e.before)) END AS lo,
        CASE WHEN e.until IS NULL THEN e.before - 1 ELSE coalesce(
            (SELECT max(id + 0) FROM deliveries
             WHERE created_at < e.until AND created_at >= e.until - interval '1 hour'
               AND (e.since IS NULL OR created_at >= e.since) AND id < e.before),
            (SELECT max(id + 0) FROM deliveries
             WHERE created_at < e.until AND (e.since IS NULL OR created_at >= e.since)
               AND id < e.before)) END AS hi
    FROM edge e
)
SELECT d.* FROM deliveries d
WHERE d.id >= (SELECT lo FROM bounds) AND d.id <= (SELECT hi FROM bounds)
  AND (sqlc.narg(endpoint_id)::text IS NULL OR d.endpoint_id = sqlc.narg(endpoint_id)::text)
  AND (sqlc.narg(event_type)::text IS NULL OR d.event_type = sqlc.narg(event_type)::text)
  AND (sqlc.narg(status)::text IS NULL OR d.status = sqlc.narg(status)::text)
  AND (sqlc.narg(since)::timestamptz IS NULL OR d.created_at >= sqlc.narg(since)::timestamptz)
  AND (sqlc.narg(until)::timestamptz IS NULL OR d.created_at < sqlc.narg(until)::timestamptz)
ORDER BY d.id DESC
LIMIT @max_rows;

-- name: DeliveryCountRetrying :one
-- Pending deliveries that have made at least one attempt: retries waiting.
SELECT count(*) FROM deliveries WHERE status = 'pending' AND attempt_count > 0;

-- name: RetentionNow :one
-- The cutoff of a retention pass, on the database's clock (created_at and
-- received_at are set by it).
SELECT (now() - make_interval(secs => @age_secs::float8))::timestamptz AS cutoff;

-- name: RetentionDeleteDeliveries :one
-- Retention: up to @max_rows deliveries created and last changed before
-- @cutoff, oldest first, found through deliveries_created, with their
-- attempts (through the attempts' primary key); returns how many
-- deliveries went. Pending deliveries are kept whatever their age:
-- retention never ends a retry, and only a pending delivery gets new
-- attempts. The outer conditions are checked again on a row changed while
-- the statement ran (a delivery requeued and attempted meanwhile), whose
-- new attempt this statement's snapshot would not see.
WITH gone AS (
    DELETE FROM deliveries d
    WHERE d.id IN (
        SELECT old.id FROM deliveries old
        WHERE old.created_at < @cutoff AND old.updated_at < @cutoff
          AND old.status <> 'pending'
        ORDER BY old.created_at
        LIMIT @max_rows
    )
      AND d.updated_at < @cutoff AND d.status <> 'pending'
    RETURNING d.id
), attempts AS (
    DELETE FROM delivery_attempts a
    USING gone g
    WHERE a.delivery_id = g.id
)
SELECT count(*) FROM gone;

-- name: RetentionLockEvents :many
-- Retention, first of two statements in one transaction: locks up to
-- @max_rows events received before @cutoff that have no delivery, oldest
-- first. An event that DeliveryRecordNew is adding deliveries to holds a
-- lock that conflicts, and is skipped.
SELECT e.id FROM events e
WHERE e.received_at < @cutoff
  AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id)
ORDER BY e.received_at
LIMIT @max_rows
FOR UPDATE SKIP LOCKED;

-- name: RetentionDeleteEvents :execrows
-- Retention, second statement: deletes the locked events that still have
-- no delivery. Its snapshot is taken after the locks, so it sees the
-- deliveries of every DeliveryRecordNew that ended before them; those that
-- start later wait for this transaction and then find the event gone.
DELETE FROM events e
WHERE e.id = ANY (@ids::text[])
  AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id);

-- name: RetentionDeleteRejected :execrows
-- Retention: up to @max_rows rejected messages received before @cutoff.
DELETE FROM rejected_messages
WHERE id IN (
    SELECT old.id FROM rejected_messages old
    WHERE old.received_at < @cutoff
    ORDER BY old.received_at
    LIMIT @max_rows
);
