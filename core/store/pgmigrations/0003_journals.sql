-- 0003_journals: the adapters' journals (core.Journals), which the
-- replicas share: see postgres_journal.go.
--
-- Times are unix nanoseconds in a bigint, 0 for the zero time, as in
-- 0001_init.sql.

-- The change counter of every journal of every instance: each append
-- takes the next value for its journal's rev, so that a watcher can ask
-- for "the journals of my instance changed since rev N" (see
-- postgres_journal_watch.go). Values are taken in order but may commit
-- out of order and leave gaps (a rolled back append); the watcher allows
-- for both.
CREATE SEQUENCE journal_revs AS bigint;

-- One row per journal: its head. An append locks it (FOR UPDATE) before
-- it reads last_seq or an entry, so that the appends to a journal, from
-- any replica, take turns and see each other's entries.
CREATE TABLE journals (
	instance    text   NOT NULL,           -- the adapter instance whose journal it is
	key         text   NOT NULL,           -- the journal's key (a webchat session id)
	epoch       text   NOT NULL,           -- chosen by its creator; never changes
	last_seq    bigint NOT NULL DEFAULT 0, -- the newest entry's seq, kept after trimming
	last_active bigint NOT NULL,
	name        text   NOT NULL DEFAULT '',
	rev         bigint NOT NULL DEFAULT 0, -- journal_revs at its last append; 0: none yet
	PRIMARY KEY (instance, key)
);

-- Idle: the longest idle journals of an instance, in order (ties by the
-- keys' bytes, as in the in-memory store).
CREATE INDEX journals_idle ON journals (instance, last_active, key COLLATE "C");
-- Watch's polling: the journals of an instance appended to since a rev.
CREATE INDEX journals_rev ON journals (instance, rev);

-- The kept entries of every journal. They are written only under their
-- journal's row lock (Append), or once the row is gone (Delete).
CREATE TABLE journal_entries (
	instance  text   NOT NULL,
	key       text   NOT NULL,
	seq       bigint NOT NULL,
	entry_key text   NOT NULL DEFAULT '', -- '' means no key
	at        bigint NOT NULL,
	data      bytea  NOT NULL,
	PRIMARY KEY (instance, key, seq)
);

-- An entry key is in a journal once.
CREATE UNIQUE INDEX journal_entries_key ON journal_entries (instance, key, entry_key) WHERE entry_key <> '';
