package store

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// DirLockFile is the lock file a gateway holds in its data directory
// (store.path) while it runs.
const DirLockFile = "switchboard.lock"

// LockDir creates the data directory dir if it is missing (owner and group
// only) and takes an exclusive lock on dir/switchboard.lock for the whole
// directory, whatever the store: the store's file, and the adapters'
// files under dir/adapters (the webchat's mailbox, the Discord
// checkpoints), belong to one gateway, and so do the webhooks an adapter
// points at its gateway when it starts. A second gateway on the same
// directory gets an error that says so. The kernel drops the lock when
// the process ends, however it ends; Close releases it. On platforms
// without flock the file is created but not locked (see lockFile).
func LockDir(dir string) (io.Closer, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("data directory %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return nil, fmt.Errorf("create data directory %s: %w", abs, err)
	}
	path := filepath.Join(abs, DirLockFile)
	f, err := lockFile(path)
	if errors.Is(err, errInUse) {
		return nil, fmt.Errorf("data directory %s is in use by another gateway (it holds %s): stop that one, or give this one another store.path", abs, path)
	}
	if err != nil {
		return nil, fmt.Errorf("lock data directory %s: %w", abs, err)
	}
	return f, nil
}
