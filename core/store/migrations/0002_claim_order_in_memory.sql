-- The claim order (each chat's head and lease) moved into memory: the
-- store rebuilds it from the pending messages when it opens (see
-- pendingIndex in pending.go). An embedded store owned by one process
-- releases every lease when it opens anyway, so leases need no
-- durability, and keeping the heads table cost a write transaction per
-- Claim and three more statements per delivered message.
DROP TABLE heads;

-- Only the heads' upkeep read this index.
DROP INDEX messages_pending_chat;
