//go:build unix

package webchat

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time the process has used, user and system,
// in all its threads: what a benchmark costs, whatever it waits for.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
