-- The history's tables keep their links without foreign keys. Checking
-- them took a query and a row lock per row written: a delivery locked its
-- event's row, an attempt its delivery's, and that was a sixth of
-- PostgreSQL's CPU per delivery at full speed (README, Performance).
--
-- What the keys guarded is kept by how rows are written and deleted:
-- - An attempt is written only by the statement that writes or updates its
--   delivery, and a delivery only once its event is recorded: by the same
--   process's claim moments before, or, for an event recorded earlier,
--   under a lock on the event's row that retention's delete waits for
--   (DeliveryRecordNew, RetentionLockEvents).
-- - Retention deletes a delivery's attempts with it, and an event only
--   once no delivery refers to it.
ALTER TABLE delivery_attempts DROP CONSTRAINT IF EXISTS delivery_attempts_delivery_id_fkey;
ALTER TABLE deliveries DROP CONSTRAINT IF EXISTS deliveries_event_id_fkey;
