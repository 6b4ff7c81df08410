package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard-gw/switchboard/internal/pgtest"
)

func TestWithDatabase(t *testing.T) {
	tests := []struct{ dsn, want string }{
		{defaultPGDSN, "postgres://postgres@127.0.0.1:5432/x?sslmode=disable"},
		{"postgresql://u:p@db/other", "postgresql://u:p@db/x"},
		{"postgres://u@db:5432", "postgres://u@db:5432/x"},
		{"host=127.0.0.1 user=postgres dbname=postgres", "host=127.0.0.1 user=postgres dbname=postgres dbname=x"},
	}
	for _, tt := range tests {
		got, err := withDatabase(tt.dsn, "x")
		if err != nil || got != tt.want {
			t.Errorf("withDatabase(%q) = %q, %v; want %q", tt.dsn, got, err, tt.want)
		}
	}
	if _, err := withDatabase("mysql://u@db/x", "x"); err == nil {
		t.Error("a mysql:// URL accepted")
	}
	// A later dbname wins, as the replicas' pgx reads it.
	cfg, err := pgx.ParseConfig("host=127.0.0.1 user=postgres dbname=postgres dbname=x")
	if err != nil || cfg.Database != "x" {
		t.Errorf("key=value DSN: database %q, %v; want x", cfg.Database, err)
	}
}

func TestRedactDSN(t *testing.T) {
	for dsn, want := range map[string]string{
		"postgres://u:secret@db/x":       "postgres://u:xxxxx@db/x",
		defaultPGDSN:                     defaultPGDSN,
		"host=db user=u":                 "host=db user=u",
		"host=db user=u password=secret": "(the -pg DSN, which holds a password)",
	} {
		if got := redactDSN(dsn); got != want {
			t.Errorf("redactDSN(%q) = %q, want %q", dsn, got, want)
		}
	}
	err := redactErr(errors.New(`connect: password "secret" refused`), "postgres://u:secret@db/x")
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("redactErr left the password in: %v", err)
	}
}

func TestCPUBetween(t *testing.T) {
	before := map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: time.Second}
	after := map[int]time.Duration{1: 3 * time.Second, 2: 2 * time.Second, 4: 500 * time.Millisecond} // 3 exited, 4 started
	if got := cpuBetween(before, after); got != 2500*time.Millisecond {
		t.Errorf("cpuBetween = %s, want 2.5s", got)
	}
}

// Against the server scripts/with-postgres.sh names (`make test`): a run's
// database is created, its backends are found in /proc, and it is dropped.
func TestPGDatabase(t *testing.T) {
	base := pgtest.Base(t)
	ctx := context.Background()
	if err := checkPG(ctx, base); err != nil {
		t.Fatal(err)
	}
	db, err := createPGDatabase(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	dropped := false
	defer func() {
		if !dropped {
			db.drop()
		}
	}()
	conn, err := pgx.Connect(ctx, db.dsn)
	if err != nil {
		t.Fatalf("connect to the run's database: %v", err)
	}
	var name string
	var pid int32
	if err := conn.QueryRow(ctx, "SELECT current_database(), pg_backend_pid()").Scan(&name, &pid); err != nil || name != db.name {
		t.Fatalf("connected to %q (%v), want %q", name, err, db.name)
	}
	// Some work for the backend, so that it has CPU to show.
	if _, err := conn.Exec(ctx, "SELECT count(*) FROM generate_series(1, 3000000)"); err != nil {
		t.Fatal(err)
	}
	cpu, err := db.cpu(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := cpu[int(pid)]; !ok {
		t.Errorf("the database's backend %d is not among the processes measured: %v", pid, cpu)
	}
	if n, err := db.commits(ctx); err != nil || n < 0 {
		t.Errorf("commits %d, %v", n, err)
	}
	if n, err := db.size(ctx); err != nil || n <= 0 {
		t.Errorf("size %d, %v", n, err)
	}
	conn.Close(ctx) // drop would close it anyway (FORCE)
	dropped = true
	if err := db.drop(); err != nil {
		t.Fatal(err)
	}
	check, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer check.Close(ctx)
	var n int
	if err := check.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname = $1", db.name).Scan(&n); err != nil || n != 0 {
		t.Errorf("database %s still there after drop (%d, %v)", db.name, n, err)
	}
}

// A server that cannot be reached is an error that says where and how
// to do without it.
func TestPGUnreachable(t *testing.T) {
	addr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	dsn := "postgres://postgres:pw@" + addr + "/postgres?sslmode=disable&connect_timeout=2"
	_, err = createPGDatabase(context.Background(), dsn)
	if err == nil {
		t.Fatal("no error from a server nobody runs")
	}
	for _, want := range []string{"cannot be reached", addr, "-skip-pg"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), ":pw@") {
		t.Errorf("error %q has the password", err)
	}
	if err := checkPG(context.Background(), dsn); err == nil {
		t.Error("checkPG: no error")
	}
}
