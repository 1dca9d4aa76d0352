-- What each device said of itself when it last finished a sync (admins
-- see who has not synced, and what waits on which phone): when (Unix
-- milliseconds), the app's version, the oldest visit waiting and the
-- outbox's size when the sync began.
ALTER TABLE credentials ADD COLUMN synced_at bigint;
ALTER TABLE credentials ADD COLUMN app_version text NOT NULL DEFAULT '';
ALTER TABLE credentials ADD COLUMN oldest_unsynced_at bigint;
ALTER TABLE credentials ADD COLUMN outbox bigint NOT NULL DEFAULT 0;
