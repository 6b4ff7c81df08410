-- 0001_init: the outbox, the claim order of each chat's queue, the chats
-- and the named leases, for PostgreSQL (see postgres.go).
--
-- Times are unix nanoseconds in a bigint, as in the SQLite store; 0 stands
-- for the zero time. timestamptz keeps microseconds only, and the store's
-- callers compare the times they gave with time.Equal.
-- Tables go into the first schema of the connection's search_path.

-- Every kept message, in both directions and all states.
CREATE TABLE messages (
	id         bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY, -- never reused: ids order chats' queues
	dir        text    NOT NULL CHECK (dir IN ('to_selarti', 'to_user')),
	chat       text    NOT NULL,
	dedupe_key text    NOT NULL DEFAULT '',
	payload    bytea   NOT NULL,
	state      text    NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
	attempts   integer NOT NULL DEFAULT 0,
	created_at bigint  NOT NULL,
	next_at    bigint  NOT NULL DEFAULT 0,
	last_error text    NOT NULL DEFAULT '',
	in_doubt   boolean NOT NULL DEFAULT false
);

-- Dedupe: one kept message per direction and key; '' means no key.
CREATE UNIQUE INDEX messages_dedupe ON messages (dir, dedupe_key) WHERE dedupe_key <> '';
-- A chat's next head once its head leaves.
CREATE INDEX messages_pending_chat ON messages (dir, chat, id) WHERE state = 'pending';
-- Stats (count, oldest pending), Prune (old delivered messages) and
-- DeliveredSince (a short span of one direction's delivered messages).
CREATE INDEX messages_dir_state_created ON messages (dir, state, created_at);
-- DeadLetters, oldest first, without reading the delivered messages kept
-- for the retention period.
CREATE INDEX messages_dead ON messages (id) WHERE state = 'dead';

-- One row per (dir, chat) with pending messages: its head (the oldest
-- pending message), its place in the claim order, and the chat's lease.
-- Every transaction that changes a chat's pending messages keeps its row
-- right (see postgres_outbox.go); Claim reads and locks only this table.
--
-- The claim order is readiness in order.go: a fresh head (waiting false:
-- zero NextAt and no lease) is due whatever the time and ranks by its
-- CreatedAt; a waiting one is due once ready_at <= now, ready_at being its
-- NextAt or the end of the chat's lease. Two partial indexes, one per
-- kind, let Claim take the heads due the longest from both without
-- reading the chats that back off.
--
-- The lease is the chat's, not the message's: while it is live no message
-- of the chat is claimed, not even one that Replay put before the leased
-- one. lease_id is the message holding it (0: none); when a lease is
-- found run out, that message is marked in doubt.
CREATE TABLE heads (
	dir         text    NOT NULL,
	chat        text    NOT NULL,
	msg_id      bigint  NOT NULL,
	waiting     boolean NOT NULL,
	ready_at    bigint  NOT NULL,
	lease_id    bigint  NOT NULL DEFAULT 0,
	lease_until bigint  NOT NULL DEFAULT 0,
	lease_owner text,                       -- the store (replica) that took the lease, and its claim
	PRIMARY KEY (dir, chat)
);

CREATE INDEX heads_fresh ON heads (dir, ready_at, msg_id) WHERE NOT waiting;
CREATE INDEX heads_waiting ON heads (dir, ready_at, msg_id) WHERE waiting;

-- Chats users have written from (last_seen <> 0), and dialog flags.
CREATE TABLE chats (
	chat         text   PRIMARY KEY,
	last_seen    bigint NOT NULL DEFAULT 0, -- CreatedAt of a recent to_selarti message, within touchEvery; 0: not known
	dialog_flags bigint NOT NULL DEFAULT 0,
	flags_at     bigint NOT NULL DEFAULT 0  -- when dialog_flags was last set
);

-- Named leases (store.Leaser). prev_owner is the owner the last
-- acquisition took the lease from after it had expired in its hands, ''
-- when it was free, renewed or taken fresh: AcquireLease returns it, in
-- the statement that takes the lease.
CREATE TABLE leases (
	name       text   PRIMARY KEY,
	owner      text   NOT NULL,
	expires_at bigint NOT NULL,
	prev_owner text   NOT NULL DEFAULT ''
);
