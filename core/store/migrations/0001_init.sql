-- 0001_init: the outbox, the head of each chat's queue, and the chats.
-- Times are unix nanoseconds; 0 stands for the zero time.

-- Every kept message, in both directions and all states.
CREATE TABLE messages (
	id         INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused: ids order chats' queues
	dir        TEXT    NOT NULL CHECK (dir IN ('to_selarti', 'to_user')),
	chat       TEXT    NOT NULL,
	dedupe_key TEXT    NOT NULL DEFAULT '',
	payload    BLOB    NOT NULL,
	state      TEXT    NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
	attempts   INTEGER NOT NULL DEFAULT 0,
	created_at INTEGER NOT NULL,
	next_at    INTEGER NOT NULL DEFAULT 0,
	last_error TEXT    NOT NULL DEFAULT ''
);

-- Dedupe: one kept message per direction and key; '' means no key.
CREATE UNIQUE INDEX messages_dedupe ON messages (dir, dedupe_key) WHERE dedupe_key <> '';
-- A chat's next head once its head leaves.
CREATE INDEX messages_pending_chat ON messages (dir, chat, id) WHERE state = 'pending';
-- Stats (count, oldest pending) and Prune (old delivered messages).
CREATE INDEX messages_dir_state_created ON messages (dir, state, created_at);
-- DeadLetters, oldest first, without reading the delivered messages kept
-- for the retention period.
CREATE INDEX messages_dead ON messages (id) WHERE state = 'dead';

-- One row per (dir, chat) with pending messages: its head and its place in
-- the claim order (see readiness in order.go). Claim reads and writes only
-- this table. The lease lives here, not on the message, because it belongs
-- to the chat: while it is live no message of the chat is claimed.
-- No foreign key to messages: deleting delivered messages in Prune would
-- then have to search heads for every deleted row.
CREATE TABLE heads (
	dir         TEXT    NOT NULL,
	chat        TEXT    NOT NULL,
	msg_id      INTEGER NOT NULL,           -- the chat's oldest pending message
	waiting     INTEGER NOT NULL,           -- 0: due at once; 1: due at ready_at
	ready_at    INTEGER NOT NULL,           -- claim order (and due time when waiting)
	lease_id    INTEGER NOT NULL DEFAULT 0, -- the leased message, 0 when none
	lease_until INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (dir, chat)
);

CREATE INDEX heads_claim ON heads (dir, waiting, ready_at, msg_id);

-- Chats users have written from (last_seen > 0), and dialog flags.
CREATE TABLE chats (
	chat         TEXT    PRIMARY KEY,
	last_seen    INTEGER NOT NULL DEFAULT 0, -- CreatedAt of the last to_selarti message; 0: not known
	dialog_flags INTEGER NOT NULL DEFAULT 0,
	flags_at     INTEGER NOT NULL DEFAULT 0  -- when dialog_flags was last set
);
