//go:build !unix

package engine

// openFileLimit is unknown here: max_conns is used as configured.
func openFileLimit() (uint64, bool) { return 0, false }
