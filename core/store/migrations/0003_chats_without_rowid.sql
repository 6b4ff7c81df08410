-- chats was a rowid table with a TEXT primary key: two B-trees (the table
-- and its autoindex), so touching a chat wrote two random pages. Keyed by
-- the chat alone it is one.
CREATE TABLE chats_new (
	chat         TEXT    PRIMARY KEY,
	last_seen    INTEGER NOT NULL DEFAULT 0, -- CreatedAt of a recent to_selarti message, within touchEvery; 0: not known
	dialog_flags INTEGER NOT NULL DEFAULT 0,
	flags_at     INTEGER NOT NULL DEFAULT 0  -- when dialog_flags was last set
) WITHOUT ROWID;
INSERT INTO chats_new (chat, last_seen, dialog_flags, flags_at)
	SELECT chat, last_seen, dialog_flags, flags_at FROM chats;
DROP TABLE chats;
ALTER TABLE chats_new RENAME TO chats;
