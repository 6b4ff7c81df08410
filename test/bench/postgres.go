package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// envPGDSN overrides the default of -pg.
const envPGDSN = "SWITCHBOARD_BENCH_PG_DSN"

// defaultPGDSN is the local server the project's scripts use
// (scripts/with-postgres.sh): 127.0.0.1:5432, user postgres, trust.
const defaultPGDSN = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// pgDatabase is a database of its own, on the benchmark's PostgreSQL
// server, for one run of a gateway-pgN target: created empty before the
// replicas start (they migrate it), measured while they run, dropped
// after. The harness's own connection (admin) is to the base DSN's
// database, so that it is not one of the database's backends it measures.
type pgDatabase struct {
	name  string
	dsn   string // the replicas' store.dsn
	where string // the server, for messages: the base DSN without its password

	mu    sync.Mutex
	admin *pgx.Conn
}

// createPGDatabase connects to the server base names (a postgres:// URL
// or key=value pairs) and creates a database with a name of its own.
func createPGDatabase(ctx context.Context, base string) (*pgDatabase, error) {
	where := redactDSN(base)
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, base)
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL at %s (-pg, or %s) cannot be reached: %w; start it, or leave the PostgreSQL targets out with -skip-pg",
			where, envPGDSN, redactErr(err, base))
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := fmt.Sprintf("switchboard_bench_%d_%s", os.Getpid(), hex.EncodeToString(b))
	if _, err := conn.Exec(cctx, "CREATE DATABASE "+name); err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("create database %s on %s: %w", name, where, redactErr(err, base))
	}
	dsn, err := withDatabase(base, name)
	if err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	return &pgDatabase{name: name, dsn: dsn, where: where, admin: conn}, nil
}

// withDatabase returns dsn with its database set to name.
func withDatabase(dsn, name string) (string, error) {
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		u.Path = "/" + name
		u.RawPath = ""
		return u.String(), nil
	}
	if strings.Contains(dsn, "://") {
		return "", fmt.Errorf("-pg: %s is not a postgres:// URL", redactDSN(dsn))
	}
	// key=value pairs: a later dbname wins (libpq and pgx alike).
	return strings.TrimSpace(dsn) + " dbname=" + name, nil
}

// redactDSN is dsn without its password, for messages: a URL with its
// password replaced, and key=value pairs not at all.
func redactDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		return u.Redacted()
	}
	if !strings.Contains(dsn, "password") {
		return dsn
	}
	return "(the -pg DSN, which holds a password)"
}

// redactErr is err's text without the DSN's password, if it has one.
func redactErr(err error, dsn string) error {
	var pw string
	if u, perr := url.Parse(dsn); perr == nil && u.User != nil {
		pw, _ = u.User.Password()
	} else if cfg, perr := pgx.ParseConfig(dsn); perr == nil {
		pw = cfg.Password
	}
	if pw == "" || !strings.Contains(err.Error(), pw) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), pw, "xxxxx"))
}

// pgCPU is the CPU time so far of the server processes that work for the
// database: its backends (the replicas' pools), and the server's WAL
// writer, checkpointer and background writer, which every database on
// the server shares. By process id, so that a step's figure is the
// difference of two samples; a backend that exited between them is left
// out (the replicas' pools keep their connections for the whole run).
func (d *pgDatabase) cpu(ctx context.Context) (map[int]time.Duration, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	rows, err := d.admin.Query(ctx, `SELECT pid FROM pg_stat_activity
		WHERE (datname = $1 OR backend_type IN ('walwriter', 'checkpointer', 'background writer'))
		AND pid <> pg_backend_pid()`, d.name)
	if err != nil {
		return nil, fmt.Errorf("list the backends of %s: %w", d.name, err)
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return nil, fmt.Errorf("list the backends of %s: %w", d.name, err)
	}
	out := make(map[int]time.Duration, len(pids))
	for _, pid := range pids {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue // exited since, or on another machine (then nothing is read)
		}
		if c, err := parseStatCPU(stat); err == nil {
			out[int(pid)] = c
		}
	}
	if len(pids) > 0 && len(out) == 0 {
		return nil, fmt.Errorf("the backends of %s are not in /proc: PostgreSQL runs on another machine or in another pid namespace", d.name)
	}
	return out, nil
}

// cpuBetween is the CPU the processes of two samples spent between
// them: a process only in the later one started in between, and counts
// from zero.
func cpuBetween(before, after map[int]time.Duration) time.Duration {
	var d time.Duration
	for pid, c := range after {
		d += c - before[pid]
	}
	return d
}

// commits is the number of transactions committed in the database so
// far (pg_stat_database.xact_commit): the store's writes and reads, each
// a transaction of its own or a batch's. The server's statistics lag a
// backend's commits by up to a second.
func (d *pgDatabase) commits(ctx context.Context) (int64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var n int64
	if err := d.admin.QueryRow(ctx, "SELECT xact_commit FROM pg_stat_database WHERE datname = $1", d.name).Scan(&n); err != nil {
		return 0, fmt.Errorf("commits of database %s: %w", d.name, err)
	}
	return n, nil
}

// size is the database's size on disk.
func (d *pgDatabase) size(ctx context.Context) (int64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var n int64
	if err := d.admin.QueryRow(ctx, "SELECT pg_database_size($1)", d.name).Scan(&n); err != nil {
		return 0, fmt.Errorf("size of database %s: %w", d.name, err)
	}
	return n, nil
}

// drop drops the database, closing any connection left to it (FORCE,
// PostgreSQL 13+), and closes the harness's own connection.
func (d *pgDatabase) drop() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := d.admin.Exec(ctx, "DROP DATABASE IF EXISTS "+d.name+" WITH (FORCE)")
	d.admin.Close(ctx)
	if err != nil {
		return fmt.Errorf("drop database %s on %s (drop it by hand): %w", d.name, d.where, err)
	}
	return nil
}

// checkPG says whether the server base names can be reached, before a
// run that needs it: the PostgreSQL targets' runs fail without it, and
// saying so at the start spares a long wait for the news.
func checkPG(ctx context.Context, base string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return fmt.Errorf("PostgreSQL at %s (-pg, or %s) cannot be reached: %w", redactDSN(base), envPGDSN, redactErr(err, base))
	}
	defer conn.Close(context.Background())
	var v int
	if err := conn.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&v); err != nil {
		return fmt.Errorf("PostgreSQL at %s: %w", redactDSN(base), err)
	}
	if v < 130000 {
		return fmt.Errorf("PostgreSQL at %s is version %d; the store and DROP DATABASE ... WITH (FORCE) need 13 or newer", redactDSN(base), v)
	}
	return nil
}
