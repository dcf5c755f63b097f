-- hookrelay's schema: endpoints, the events they receive, one delivery per
-- event and endpoint, and every attempt of every delivery.

CREATE TABLE endpoints (
    id                  text PRIMARY KEY,
    url                 text NOT NULL,
    description         text NOT NULL DEFAULT '',
    event_types         text[] NOT NULL,
    filter_provider_ids text[] NOT NULL DEFAULT '{}',
    filter_channel_ids  text[] NOT NULL DEFAULT '{}',
    filter_template_ids text[] NOT NULL DEFAULT '{}',
    headers             jsonb NOT NULL DEFAULT '{}',
    signature_scheme    text NOT NULL DEFAULT 'standard',
    -- secrets[1] signs; later entries are rotated-out secrets still valid
    -- until secrets_expire_at.
    secrets             text[] NOT NULL,
    secrets_expire_at   timestamptz,
    active              boolean NOT NULL DEFAULT true,
    disabled_reason     text NOT NULL DEFAULT '',
    retry_policy        jsonb,
    timeout_ms          integer,
    rate_limit          integer,
    failing_since       timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT endpoints_scheme CHECK (signature_scheme IN ('standard', 'kmsg')),
    CONSTRAINT endpoints_event_types CHECK (cardinality(event_types) > 0)
);

CREATE INDEX endpoints_created ON endpoints (created_at DESC, id DESC);

CREATE TABLE events (
    id              text PRIMARY KEY,
    type            text NOT NULL,
    occurred_at     timestamptz NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    provider_id     text,
    channel_id      text,
    template_id     text,
    message_id      text,
    organization_id text,
    -- the event's bytes exactly as published: what endpoints receive and
    -- signatures cover (jsonb would reorder keys).
    body            bytea NOT NULL
);

CREATE INDEX events_received ON events (received_at DESC, id DESC);
CREATE INDEX events_type ON events (type, received_at DESC);

CREATE TABLE deliveries (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id         text NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    endpoint_id      text NOT NULL,
    event_type       text NOT NULL,
    status           text NOT NULL DEFAULT 'pending',
    attempt_count    integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz,
    last_status_code integer,
    last_error       text NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    completed_at     timestamptz,
    CONSTRAINT deliveries_once UNIQUE (event_id, endpoint_id),
    CONSTRAINT deliveries_status
        CHECK (status IN ('pending', 'succeeded', 'failed', 'skipped'))
);

-- History lists are newest first (id DESC) under one filter each.
CREATE INDEX deliveries_endpoint ON deliveries (endpoint_id, id DESC);
CREATE INDEX deliveries_status_id ON deliveries (status, id DESC);
CREATE INDEX deliveries_type ON deliveries (event_type, id DESC);

CREATE TABLE delivery_attempts (
    delivery_id   bigint NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    number        integer NOT NULL,
    started_at    timestamptz NOT NULL,
    duration_ms   integer NOT NULL,
    status_code   integer,
    response_body text NOT NULL DEFAULT '',
    error         text NOT NULL DEFAULT '',
    PRIMARY KEY (delivery_id, number)
);

-- Messages the fan-out stage refused, kept for operators.
CREATE TABLE rejected_messages (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subject     text NOT NULL,
    stream_seq  bigint NOT NULL,
    msg_id      text NOT NULL DEFAULT '',
    reason      text NOT NULL,
    head        text NOT NULL,
    size        integer NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT rejected_once UNIQUE (stream_seq, subject)
);
