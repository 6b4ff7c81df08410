//go:build sqlite_cgo

package sqlitedb

import (
	"database/sql"
	"fmt"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// Driver names the SQLite driver this binary was built with: with the
// sqlite_cgo build tag, SQLite's own C library through
// github.com/mattn/go-sqlite3. It needs a C compiler to build (CGO_ENABLED=1)
// and links the C library dynamically; docs/benchmarks.md measures what it
// saves beside the default (driver_modernc.go).
const Driver = "github.com/mattn/go-sqlite3 (cgo)"

// DriverName is the database/sql name of Driver, registered below with
// the connection set-up the default driver takes as parameters.
const DriverName = "sqlite3-switchboard"

func init() {
	sql.Register(DriverName, &sqlite3.SQLiteDriver{ConnectHook: func(c *sqlite3.SQLiteConn) error {
		// mattn/go-sqlite3 has no parameter for journal_size_limit.
		if _, err := c.Exec(fmt.Sprintf("PRAGMA journal_size_limit = %d", WALSizeLimit), nil); err != nil {
			return fmt.Errorf("set journal_size_limit: %w", err)
		}
		return nil
	}})
}

// sizeLimitParam: the ConnectHook above sets it, to WALSizeLimit, the one
// size used.
func sizeLimitParam(int) []string { return nil }
