package store

import (
	"context"
	"embed"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// pgMigrationFiles holds the PostgreSQL schema, one file per version,
// named NNNN_what.sql like the SQLite ones (see loadMigrations). A file,
// once released, never changes: a change is a new file.
//
//go:embed pgmigrations/*.sql
var pgMigrationFiles embed.FS

// pgMigrationLock is the key of the advisory lock the migrations run under:
// replicas starting together wait for each other, so that each migration
// runs exactly once. It is the same for every schema of a database
// (advisory locks are per database), which only makes two deployments in
// one database take turns at their start.
const pgMigrationLock int64 = 0x53_57_42_44_4d_49_47_31 // "SWBDMIG1"

// pgMigrations returns the embedded PostgreSQL migrations in version order.
func pgMigrations() ([]migration, error) {
	return loadMigrations(pgMigrationFiles, "pgmigrations")
}

// migratePostgres brings the schema (the first of the search_path) up to
// the newest embedded version, in one transaction that holds
// pgMigrationLock: a failed upgrade changes nothing, and of several
// processes opening the store at once the first migrates while the others
// wait, then find nothing to do. A database newer than this binary is
// refused: an older binary would misread it.
func migratePostgres(ctx context.Context, pool *pgxpool.Pool) error {
	all, err := pgMigrations()
	if err != nil {
		return err
	}
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) // no-op after Commit
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", pgMigrationLock); err != nil {
		return fmt.Errorf("wait for the migration lock: %w", err)
	}
	const create = `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer PRIMARY KEY,
		applied_at bigint  NOT NULL -- unix nanoseconds
	)`
	if _, err := tx.Exec(ctx, create); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	var current int
	if err := tx.QueryRow(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Scan(&current); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if latest := len(all); current > latest {
		return fmt.Errorf("schema version %d is newer than this binary knows (%d): run a newer switchboard", current, latest)
	}
	for _, m := range all[current:] {
		if _, err := tx.Exec(ctx, m.sql); err != nil {
			return fmt.Errorf("apply migration %s: %w", m.name, err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)", m.version, time.Now().UnixNano()); err != nil {
			return fmt.Errorf("apply migration %s: %w", m.name, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit the migrations: %w", err)
	}
	return nil
}
