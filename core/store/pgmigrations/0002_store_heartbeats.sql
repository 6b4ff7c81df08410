-- 0002_store_heartbeats: each open store's heartbeat, so that the chats a
-- dead replica had leased are claimed again within seconds, not when
-- their leases run out (see postgres_heartbeat.go). seen_at is the
-- database's clock: replicas' clocks may disagree, the server's is one.
CREATE TABLE store_heartbeats (
	owner   text        PRIMARY KEY,
	seen_at timestamptz NOT NULL
);

-- The leased heads, for the claim of those whose store is gone.
CREATE INDEX heads_leased ON heads (dir) WHERE lease_id <> 0;
