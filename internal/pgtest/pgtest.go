// Package pgtest gives tests a PostgreSQL schema of their own in the
// database that scripts/with-postgres.sh names in SWITCHBOARD_TEST_PG_DSN
// (`make test` runs the tests under it).
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvDSN names the test database; EnvRequire, when "1", makes a test
// fail rather than skip without it (scripts/with-postgres.sh sets both,
// so that a run of `make test` never passes without the database tests).
const (
	EnvDSN     = "SWITCHBOARD_TEST_PG_DSN"
	EnvRequire = "SWITCHBOARD_TEST_REQUIRE_PG"
)

// Base returns the test database's DSN. Without one the test is skipped
// (or fails, under EnvRequire).
func Base(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(EnvDSN)
	if dsn == "" {
		if os.Getenv(EnvRequire) == "1" {
			t.Fatalf("%s is not set, and %s=1 says PostgreSQL is required", EnvDSN, EnvRequire)
		}
		t.Skipf("%s is not set: run the PostgreSQL tests with scripts/with-postgres.sh go test ... "+
			"(it starts the local server if needed and makes a database of their own), as `make test` does", EnvDSN)
	}
	return dsn
}

// DSN creates a fresh schema in the test database and returns a
// connection string whose search_path is that schema, so that a store
// opened on it is empty and isolated from the others; the schema is
// dropped when the test ends.
func DSN(t testing.TB) string {
	t.Helper()
	base := Base(t)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "sbtest_" + hex.EncodeToString(b)
	exec(t, base, "CREATE SCHEMA "+schema)
	t.Cleanup(func() { exec(t, base, "DROP SCHEMA "+schema+" CASCADE") })
	return WithParam(base, "search_path", schema)
}

func exec(t testing.TB, dsn, q string) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Errorf("%s: connect to the test database: %v", q, err)
		return
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, q); err != nil {
		t.Errorf("%s: %v", q, err)
	}
}

// WithParam returns dsn (a URL or keyword/value pairs) with the
// connection parameter key set to value.
func WithParam(dsn, key, value string) string {
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		q := u.Query()
		q.Set(key, value)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return strings.TrimSpace(dsn) + " " + key + "=" + value
}
