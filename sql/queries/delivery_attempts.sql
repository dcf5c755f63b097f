-- name: DeliveryAttemptListByDelivery :many
SELECT * FROM delivery_attempts
WHERE delivery_id = @delivery_id
ORDER BY number;
