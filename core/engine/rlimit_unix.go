//go:build unix

package engine

import "syscall"

// openFileLimit is the soft limit on open files (which Go raises to the
// hard limit at start-up on Linux and macOS).
func openFileLimit() (uint64, bool) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, false
	}
	return uint64(rl.Cur), true
}
