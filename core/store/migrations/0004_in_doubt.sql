-- in_doubt: the message's last attempt may have reached Selarti without
-- its result being recorded (it timed out after the request went out, or
-- it was in flight when the process died). The router then waits for
-- Selarti's echo of the message before sending it again.
ALTER TABLE messages ADD COLUMN in_doubt INTEGER NOT NULL DEFAULT 0;

-- meta holds the store's own state. 'clean' is 1 while no process has the
-- store open after a clean Close, 0 while one has it open: an open that
-- finds 0 follows a crash.
CREATE TABLE meta (
	key   TEXT    PRIMARY KEY,
	value INTEGER NOT NULL
) WITHOUT ROWID;
