// Package sqlitedb is the SQLite plumbing the gateway's durable stores
// share (core/store's outbox, the webchat mailbox): checking and creating
// the database file, opening its write and read connections, WAL, prepared
// statements, and the group committer that every write goes through. The
// schemas, the queries and what they mean stay with each store.
package sqlitedb

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// sqliteMagic starts every SQLite database file.
const sqliteMagic = "SQLite format 3\x00"

// AbsPath checks path for use as a database file and returns it absolute.
func AbsPath(path string) (string, error) {
	if path == "" {
		return "", errors.New("empty path")
	}
	// The driver reads everything after a '?' as connection parameters.
	if strings.Contains(path, "?") {
		return "", errors.New("path must not contain '?'")
	}
	return filepath.Abs(path)
}

// PrepareFile refuses a file that is not a SQLite database before SQLite
// opens it, so that nothing (a journal mode, a WAL) is written to it, and
// creates a missing file readable by its owner only: the stores hold users'
// messages. SQLite gives its WAL and shared-memory files the same mode.
func PrepareFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDONLY, 0)
	if errors.Is(err, os.ErrNotExist) {
		f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("create database file: %w", err)
		}
		return f.Close()
	}
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return errors.New("is a directory")
	}
	if fi.Size() == 0 {
		// An empty file is a new database to SQLite.
		return nil
	}
	head := make([]byte, len(sqliteMagic))
	if _, err := io.ReadFull(f, head); err != nil || !bytes.Equal(head, []byte(sqliteMagic)) {
		return errors.New("not a SQLite database (wrong header); refusing to touch it: move it away or give another path")
	}
	return nil
}
