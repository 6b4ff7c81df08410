package store

import "database/sql"

// DBOf gives the store_test tests the database behind s, to inspect the
// schema and the query plans, and to load many rows fast in benchmarks.
func DBOf(s *SQLite) *sql.DB { return s.wdb }

// PendingSQL is pendingSQL, for the query-plan test.
const PendingSQL = pendingSQL
