package sqlitedb

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAbsPath(t *testing.T) {
	tests := []struct {
		path    string
		wantErr string
	}{
		{"", "empty path"},
		{"a.db?mode=ro", "must not contain '?'"},
		{"dir/a.db", ""},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			got, err := AbsPath(tt.path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("AbsPath(%q) = %q, %v; want error %q", tt.path, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || !filepath.IsAbs(got) || !strings.HasSuffix(got, filepath.Join("dir", "a.db")) {
				t.Fatalf("AbsPath(%q) = %q, %v; want it absolute", tt.path, got, err)
			}
		})
	}
}

func TestPrepareFile(t *testing.T) {
	tests := []struct {
		name    string
		content []byte // nil: no file; written as is otherwise
		dir     bool
		wantErr string
	}{
		{name: "missing"},
		{name: "empty", content: []byte{}},
		{name: "sqlite", content: []byte(sqliteMagic + "rest of the page")},
		{name: "not sqlite", content: []byte("hello, world: not a database"), wantErr: "wrong header"},
		{name: "short", content: []byte("SQL"), wantErr: "wrong header"},
		{name: "directory", dir: true, wantErr: "is a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.db")
			switch {
			case tt.dir:
				if err := os.Mkdir(path, 0o700); err != nil {
					t.Fatal(err)
				}
			case tt.content != nil:
				if err := os.WriteFile(path, tt.content, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			err := PrepareFile(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("PrepareFile: %v, want %q", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatalf("PrepareFile: %v", err)
			}
			if tt.dir {
				return
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if tt.content == nil && fi.Mode().Perm() != 0o600 {
				t.Errorf("created with mode %v, want 0600", fi.Mode().Perm())
			}
			if tt.content != nil {
				// Whatever it holds, an existing file is left as it was.
				got, err := os.ReadFile(path)
				if err != nil || !bytes.Equal(got, tt.content) {
					t.Errorf("file now holds %q (%v), want it untouched", got, err)
				}
			}
		})
	}
}

// TestOpen: the write connection commits with synchronous=FULL and takes
// extra parameters; UseWAL switches a file to WAL and refuses a database
// that cannot have one; PrepareAll names the query it could not prepare.
func TestOpen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "x.db")
	if err := PrepareFile(path); err != nil {
		t.Fatal(err)
	}
	db, err := OpenWriter(ctx, path, "_foreign_keys=1")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for pragma, want := range map[string]int{"synchronous": 2, "foreign_keys": 1} {
		var got int
		if err := db.QueryRow("PRAGMA " + pragma).Scan(&got); err != nil || got != want {
			t.Errorf("PRAGMA %s = %d, %v; want %d", pragma, got, err, want)
		}
	}
	if err := UseWAL(ctx, db); err != nil {
		t.Fatalf("UseWAL: %v", err)
	}
	var mode string
	if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v; want wal", mode, err)
	}

	mem, err := OpenWriter(ctx, ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	if err := UseWAL(ctx, mem); err == nil || !strings.Contains(err.Error(), "not wal") {
		t.Errorf("UseWAL on an in-memory database: %v, want a refusal", err)
	}

	const bad = "SELECT nothing FROM nowhere"
	if _, err := PrepareAll(ctx, db, []string{"SELECT 1", bad}); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("PrepareAll: %v, want an error naming %q", err, bad)
	}
}
