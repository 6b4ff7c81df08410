package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

var (
	_ Store  = (*Postgres)(nil)
	_ Leaser = (*Postgres)(nil)
	_ Heads  = (*Postgres)(nil)
)

// Postgres is the Store that several gateway replicas share: one
// PostgreSQL database (the first schema of the connection's search_path),
// reached through a pool of connections. Every call that changes a
// message commits before it returns; PostgreSQL's commit is durable with
// synchronous_commit on, its default, which this store leaves alone except
// for the ends of attempts (Delivered, Retry, Defer, Kill: see
// Store.Delivered and pgNoFlushSQL).
//
// Unlike SQLite, it keeps nothing in memory: the claim order and the
// leases are rows (the heads table, see pgmigrations/0001_init.sql and
// postgres_outbox.go), so that every replica sees the others' claims, a
// lease outlives the replica that took it, and per-chat order holds
// across replicas. It implements Leaser and Heads as well, and keeps the
// adapters' journals (Journals, postgres_journal.go).
type Postgres struct {
	pool   *pgxpool.Pool
	secret redactor
	// owner names this store in the leases it takes (heads.lease_owner),
	// for an operator looking at the table; claims counts its claims, so
	// that each claim's leases are told apart (see Claim).
	owner  string
	claims atomic.Uint64
	// stopBeat ends the heartbeat (see postgres_heartbeat.go), which
	// closes beatDone.
	stopBeat, beatDone chan struct{}

	// mu makes Close wait for the calls in progress.
	mu     sync.RWMutex
	closed bool

	// schema is the schema the tables live in (current_schema()), which
	// the journals' notices name: several deployments, or tests, may share
	// one database and its notification channel.
	schema string
	// closing is cancelled by Close, which ends the journals' watchers
	// (postgres_journal_watch.go); watchers counts their listening
	// connections, which Close waits for.
	closing     context.Context
	stopWatches context.CancelFunc
	watchers    sync.WaitGroup
	// watchKnobs are the tests' settings of Watch (export_test.go).
	watchKnobs pgWatchKnobs
}

// pgDefaultMaxConns is the pool's size unless the DSN sets pool_max_conns:
// a gateway's workers and dispatchers need a few connections, and a few
// replicas must fit in the server's max_connections (100 by default).
const pgDefaultMaxConns = 8

// OpenPostgres connects to the database dsn names (a postgres:// URL or
// key=value pairs, as libpq takes; pool_max_conns and the other pool_*
// settings of pgxpool apply, the pool holds pgDefaultMaxConns connections
// unless told otherwise) and upgrades its schema. Tables live in the first
// schema of the search_path, which the DSN may set (search_path=...).
// Several replicas may open the same database at once: the migrations run
// once, under a lock (see migratePostgres). Leases other replicas hold are
// kept: they end when they run out.
//
// Its errors, now and later, never contain the DSN nor its password.
func OpenPostgres(ctx context.Context, dsn string) (*Postgres, error) {
	secret := newRedactor(dsn)
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("open postgres store: %w", parseError(err, secret))
	}
	secret.add(cfg.ConnConfig.Password) // from the DSN, PGPASSWORD or a passfile
	// pgxpool parses pool_max_conns and defaults to max(4, CPUs) without
	// it; only a DSN that says nothing gets this store's default.
	if !strings.Contains(dsn, "pool_max_conns") {
		cfg.MaxConns = pgDefaultMaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres store: %w", secret.redact(err))
	}
	// pgxpool connects lazily: the migrations are the first connection,
	// and report a server that cannot be reached.
	if err := migratePostgres(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres store: %w", secret.redact(err))
	}
	var schema string
	if err := pool.QueryRow(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres store: read the schema: %w", secret.redact(err))
	}
	s := &Postgres{pool: pool, secret: secret, owner: newOwner(), schema: schema,
		stopBeat: make(chan struct{}), beatDone: make(chan struct{})}
	s.closing, s.stopWatches = context.WithCancel(context.Background())
	// The first beat before the first claim: a claim of a store not seen
	// yet would look like one of a dead store's.
	if err := s.beat(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres store: %w", secret.redact(err))
	}
	go s.heartbeat(s.stopBeat, s.beatDone)
	return s, nil
}

// newOwner names a store for the leases it takes: the host, the process
// and a random part, since a host may run several gateways and a process
// several stores.
func newOwner() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	rand.Read(b)
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b))
}

// Close implements Store. It ends the journals' watchers (their Watch
// returns ErrClosed), waits for the calls in progress, ends the heartbeat
// and closes the pool and the watchers' connections. The chats this store
// leased are claimable at once by the other stores: a store is closed
// after its attempts ended. Named leases (Leaser) are kept: they run out.
func (s *Postgres) Close() error {
	// First, so that a watcher's poll, a call in progress, ends at once.
	s.stopWatches()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	close(s.stopBeat)
	<-s.beatDone
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_, _ = s.pool.Exec(ctx, pgEndBeatSQL, s.owner)
	cancel()
	s.pool.Close()
	s.watchers.Wait()
	return nil
}

// use starts a call: it holds off Close until done is called. It fails
// after Close, and with ctx's error when ctx has ended.
func (s *Postgres) use(ctx context.Context) (done func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, ErrClosed
	}
	return s.mu.RUnlock, nil
}

// fail wraps the error of operation op for the caller, without secrets.
func (s *Postgres) fail(op string, err error) error {
	return fmt.Errorf("%s: %w", op, s.secret.redact(err))
}

// redactor keeps a DSN's secrets out of error messages. pgx already masks
// the password in the errors of its DSN parser and never puts it in a
// connection error (which names the user, database and host); this is the
// second line, for what a future pgx or a server message might echo: the
// DSN itself and every password it holds are replaced before an error
// leaves the store.
type redactor struct {
	secrets []string
}

// pgPasswordKV matches a password in key=value form, quoted or not.
var pgPasswordKV = regexp.MustCompile(`(?:^|\s)(?:ssl)?password\s*=\s*('(?:[^'\\]|\\.)*'|[^\s]*)`)

func newRedactor(dsn string) redactor {
	var r redactor
	r.add(dsn)
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		if p, ok := u.User.Password(); ok {
			r.add(p)
			r.add(url.QueryEscape(p))
			r.add(url.PathEscape(p))
		}
		for _, k := range []string{"password", "sslpassword"} {
			r.add(u.Query().Get(k))
		}
	}
	// key=value pairs, and whatever an unparsable URL holds after its
	// user's colon.
	for _, m := range pgPasswordKV.FindAllStringSubmatch(dsn, -1) {
		r.add(m[1])
		r.add(strings.Trim(m[1], "'"))
	}
	if rest, ok := strings.CutPrefix(dsn, "postgres://"); ok {
		r.addUserinfo(rest)
	} else if rest, ok := strings.CutPrefix(dsn, "postgresql://"); ok {
		r.addUserinfo(rest)
	}
	return r
}

// addUserinfo adds the password of a URL's user:password@ part, found the
// way pgx's parser finds it, so that a URL url.Parse refuses is covered.
func (r *redactor) addUserinfo(rest string) {
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		if _, pw, ok := strings.Cut(rest[:i], ":"); ok {
			r.add(pw)
			if p, err := url.PathUnescape(pw); err == nil {
				r.add(p)
			}
		}
	}
}

func (r *redactor) add(secret string) {
	if secret != "" {
		r.secrets = append(r.secrets, secret)
	}
}

// redact returns err unchanged when its message holds no secret, else an
// error with the secrets masked that unwraps to the context error it may
// hold and to nothing else: the chain below it has the secret.
func (r redactor) redact(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := msg
	// Longest first, so that a password inside the DSN does not leave the
	// rest of the DSN behind.
	secrets := slices.Clone(r.secrets)
	slices.SortFunc(secrets, func(a, b string) int { return len(b) - len(a) })
	for _, s := range secrets {
		clean = strings.ReplaceAll(clean, s, "xxxxx")
	}
	if clean == msg {
		return err
	}
	re := &redactedError{msg: clean}
	for _, target := range []error{context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, target) {
			re.err = target
		}
	}
	return re
}

// redactedError is an error whose message had a secret masked.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// parseError reports a DSN pgx could not parse, without the DSN: pgx's
// message quotes it (its password masked, its host and user not), and a
// DSN is configuration that may be kept secret as a whole.
func parseError(err error, r redactor) error {
	msg := err.Error()
	// "cannot parse `<dsn>`: <what> (<cause>)": keep what follows the DSN.
	if i := strings.LastIndex(msg, "`: "); strings.HasPrefix(msg, "cannot parse `") && i >= 0 {
		msg = msg[i+len("`: "):]
	} else {
		msg = "malformed"
	}
	return r.redact(fmt.Errorf("the DSN (not shown) cannot be parsed: %s", msg))
}
