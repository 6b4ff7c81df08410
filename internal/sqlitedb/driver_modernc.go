//go:build !sqlite_cgo

package sqlitedb

import (
	"fmt"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver, pure Go
)

// Driver names the SQLite driver this binary was built with. The default
// is modernc.org/sqlite, SQLite translated to Go: the binary stays static
// and builds with no C compiler. The sqlite_cgo build tag swaps in the C
// library (see driver_cgo.go).
const Driver = "modernc.org/sqlite (pure Go)"

// DriverName is the database/sql name of Driver, for sql.Open.
const DriverName = "sqlite"

// sizeLimitParam is the connection parameter that sets journal_size_limit
// to n on every connection.
func sizeLimitParam(n int) []string {
	return []string{fmt.Sprintf("_pragma=journal_size_limit(%d)", n)}
}
