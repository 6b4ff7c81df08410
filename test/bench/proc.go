package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat.
// It is 100 on every Linux architecture Go supports; the kernel keeps it
// fixed for user space whatever its internal HZ.
const clockTicks = 100

// procSample is what the kernel says about one process at one moment.
type procSample struct {
	CPU time.Duration // user + system time of all its threads so far
	RSS int64         // resident set, bytes (VmRSS)
	HWM int64         // peak resident set since start or the last resetPeak, bytes (VmHWM)
}

// readProc samples process pid from /proc.
func readProc(pid int) (procSample, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procSample{}, fmt.Errorf("read stat of process %d: %w", pid, err)
	}
	cpu, err := parseStatCPU(stat)
	if err != nil {
		return procSample{}, fmt.Errorf("parse stat of process %d: %w", pid, err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procSample{}, fmt.Errorf("read status of process %d: %w", pid, err)
	}
	rss, hwm, err := parseStatusMemory(status)
	if err != nil {
		return procSample{}, fmt.Errorf("parse status of process %d: %w", pid, err)
	}
	return procSample{CPU: cpu, RSS: rss, HWM: hwm}, nil
}

// parseStatCPU returns utime+stime from the contents of /proc/<pid>/stat.
// The command name (field 2) is in parentheses and may itself contain
// spaces and parentheses, so fields are counted from the last ')'.
func parseStatCPU(stat []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("no command name")
	}
	fields := strings.Fields(string(stat[i+1:]))
	// After the name: state is field 3, utime 14, stime 15.
	const utime, stime = 14 - 3, 15 - 3
	if len(fields) <= stime {
		return 0, fmt.Errorf("%d fields after the command name, want more than %d", len(fields), stime)
	}
	u, err := strconv.ParseInt(fields[utime], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("utime: %w", err)
	}
	s, err := strconv.ParseInt(fields[stime], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stime: %w", err)
	}
	return time.Duration(u+s) * time.Second / clockTicks, nil
}

// parseStatusMemory returns VmRSS and VmHWM, in bytes, from the contents
// of /proc/<pid>/status.
func parseStatusMemory(status []byte) (rss, hwm int64, err error) {
	found := 0
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		f := strings.Fields(val)
		if len(f) != 2 || f[1] != "kB" {
			return 0, 0, fmt.Errorf("%s: unexpected value %q", key, val)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %w", key, err)
		}
		if key == "VmRSS" {
			rss = kb << 10
		} else {
			hwm = kb << 10
		}
		found++
	}
	if found != 2 {
		return 0, 0, errors.New("VmRSS or VmHWM missing")
	}
	return rss, hwm, nil
}

// resetPeak resets the process's VmHWM to its current RSS ("5" to
// clear_refs, Linux 4.0+), so that the next sample's HWM is the peak of
// one step alone. It is best effort: without it, HWM is the peak so far.
func resetPeak(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// selfCPU is the harness's own CPU time so far (all threads): the load
// clients and the Selarti simulator share the machine with the target, so
// their cost is reported beside it.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loadAverage returns the 1-minute load average, or -1 when unknown.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	return parseLoadAverage(b)
}

func parseLoadAverage(b []byte) float64 {
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return -1
	}
	return v
}

// dirSize is the total size of the regular files under dir.
func dirSize(dir string) (int64, error) {
	var total int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			total += info.Size()
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("size of %s: %w", dir, err)
	}
	return total, nil
}

// raiseFileLimit lifts RLIMIT_NOFILE to want (both limits), so that the
// harness and the targets it starts (which inherit it) can hold one socket
// per chat. Raising the hard limit needs CAP_SYS_RESOURCE; without it the
// soft limit goes as high as the hard one, and the caller is told.
func raiseFileLimit(want uint64) (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("get open files limit: %w", err)
	}
	if lim.Cur >= want {
		return lim.Cur, nil
	}
	next := syscall.Rlimit{Cur: want, Max: max(lim.Max, want)}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &next); err == nil {
		return want, nil
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("set open files limit: %w", err)
	}
	return lim.Cur, nil
}

// rssWatch samples the resident set of a target's processes every
// interval and keeps the highest value seen in each phase of the run,
// and the highest VmHWM seen overall: the peak of the whole life, spikes
// between two samples included. For a target of several processes (the
// gateway-pgN replicas) a sample is their sum, and the VmHWM the sum of
// each one's own peak: an upper bound of their peak together.
//
// ru_maxrss, which the kernel reports when the process exits, is no use
// here: Go starts children with vfork semantics, so the child shares the
// harness's memory until exec, and exec records that memory's high-water
// mark as the child's. A relay that never held 30 MB reported 390 MB,
// the harness's size at the time.
type rssWatch struct {
	pids  []int
	mu    sync.Mutex
	phase string
	peaks map[string]int64
	order []string
	hwm   int64
	stop  chan struct{}
	done  chan struct{}
}

func watchRSS(pids []int, interval time.Duration) *rssWatch {
	w := &rssWatch{pids: pids, phase: "start", peaks: map[string]int64{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-t.C:
			}
			if !w.sample() {
				return // a process is gone
			}
		}
	}()
	return w
}

// sample reads the processes' memory once; false when one is gone.
func (w *rssWatch) sample() bool {
	var rss, hwm int64
	for _, pid := range w.pids {
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			return false
		}
		r, h, err := parseStatusMemory(status)
		if err != nil {
			return true
		}
		rss += r
		hwm += h
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.peaks[w.phase]; !ok {
		w.order = append(w.order, w.phase)
	}
	w.peaks[w.phase] = max(w.peaks[w.phase], rss)
	w.hwm = max(w.hwm, hwm)
	return true
}

// setPhase names what the process is doing from now on.
func (w *rssWatch) setPhase(p string) {
	w.mu.Lock()
	w.phase = p
	w.mu.Unlock()
}

// resetPeak starts a new VmHWM period (for one step's peak) after taking
// the old period's peak into the lifetime one.
func (w *rssWatch) resetPeak() {
	w.sample()
	for _, pid := range w.pids {
		_ = resetPeak(pid)
	}
}

// finish stops sampling and returns the peak of each phase, in order, and
// the peak of the whole life.
func (w *rssWatch) finish() (phases []PhasePeak, peak int64) {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	phases = make([]PhasePeak, 0, len(w.order))
	for _, p := range w.order {
		phases = append(phases, PhasePeak{Phase: p, RSS: w.peaks[p]})
		peak = max(peak, w.peaks[p])
	}
	return phases, max(peak, w.hwm)
}

// PhasePeak is the highest resident set sampled in one phase of a run.
type PhasePeak struct {
	Phase string `json:"phase"`
	RSS   int64  `json:"rss_bytes"`
}

// GoMemory is the Go runtime's view of the gateway's memory, from its
// Prometheus /metrics: how much of the resident set is heap, goroutine
// stacks, and what the runtime holds beyond them. Memory that SQLite
// (modernc.org/sqlite) allocates is outside the Go heap and shows only
// in the resident set.
type GoMemory struct {
	HeapInuse  int64 `json:"heap_inuse_bytes"`
	StackInuse int64 `json:"stack_inuse_bytes"`
	Sys        int64 `json:"go_sys_bytes"`
	Goroutines int64 `json:"goroutines"`
}

// parseGoMemory reads GoMemory from a Prometheus text exposition.
func parseGoMemory(text string) (GoMemory, bool) {
	var m GoMemory
	found := 0
	for line := range strings.SplitSeq(text, "\n") {
		name, val, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		var dst *int64
		switch name {
		case "go_memstats_heap_inuse_bytes":
			dst = &m.HeapInuse
		case "go_memstats_stack_inuse_bytes":
			dst = &m.StackInuse
		case "go_memstats_sys_bytes":
			dst = &m.Sys
		case "go_goroutines":
			dst = &m.Goroutines
		default:
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil {
			continue
		}
		*dst = int64(v)
		found++
	}
	return m, found == 4
}
