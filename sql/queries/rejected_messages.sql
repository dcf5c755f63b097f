-- name: RejectedMessageInsert :exec
INSERT INTO rejected_messages (subject, stream_seq, msg_id, reason, head, size)
VALUES (@subject, @stream_seq, @msg_id, @reason, @head, @size)
ON CONFLICT (stream_seq, subject) DO NOTHING;

-- name: RejectedMessageList :many
SELECT * FROM rejected_messages
WHERE (sqlc.narg(before_id)::bigint IS NULL OR id < sqlc.narg(before_id)::bigint)
ORDER BY id DESC
LIMIT @max_rows;
