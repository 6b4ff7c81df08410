package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	tests := []struct {
		name    string
		stat    string
		want    time.Duration
		wantErr bool
	}{
		{
			name: "plain",
			stat: "4242 (switchboard) S 1 4242 4242 0 -1 4194560 5000 0 0 0 250 75 0 0 20 0 12 0 1000 1000000 5000 18446744073709551615",
			want: 3250 * time.Millisecond,
		},
		{
			name: "name with spaces and parentheses",
			stat: "7 (a) b (c)) R 1 7 7 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 1 1 1",
			want: 30 * time.Millisecond,
		},
		{name: "no name", stat: "7 R 1", wantErr: true},
		{name: "too short", stat: "7 (x) R 1 2 3", wantErr: true},
		{name: "not a number", stat: "7 (x) R 1 7 7 0 -1 0 0 0 0 0 x 2 0", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatCPU([]byte(tt.stat))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("cpu = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestParseStatusMemory(t *testing.T) {
	status := "Name:\tswitchboard\nVmPeak:\t 1000 kB\nVmHWM:\t   40960 kB\nVmRSS:\t   20480 kB\nThreads:\t9\n"
	rss, hwm, err := parseStatusMemory([]byte(status))
	if err != nil {
		t.Fatal(err)
	}
	if rss != 20<<20 || hwm != 40<<20 {
		t.Errorf("rss %d, hwm %d, want %d and %d", rss, hwm, 20<<20, 40<<20)
	}
	for _, bad := range []string{"Name:\tx\nVmRSS:\t 1 kB\n", "VmRSS:\t 1 MB\nVmHWM:\t 1 kB\n", "VmRSS:\t x kB\nVmHWM:\t 1 kB\n"} {
		if _, _, err := parseStatusMemory([]byte(bad)); err == nil {
			t.Errorf("parseStatusMemory(%q) succeeded", bad)
		}
	}
}

func TestReadProcSelf(t *testing.T) {
	s, err := readProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.RSS <= 0 || s.HWM < s.RSS {
		t.Errorf("rss %d, hwm %d: want 0 < rss <= hwm", s.RSS, s.HWM)
	}
}

func TestParseLoadAverage(t *testing.T) {
	if got := parseLoadAverage([]byte("1.79 3.21 2.92 3/456 7890\n")); got != 1.79 {
		t.Errorf("load = %v, want 1.79", got)
	}
	if got := parseLoadAverage([]byte("")); got != -1 {
		t.Errorf("load of nothing = %v, want -1", got)
	}
}

func TestDirSize(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "adapters", "web"), 0o700); err != nil {
		t.Fatal(err)
	}
	for path, n := range map[string]int{"switchboard.db": 4096, "switchboard.db-wal": 100, "adapters/web/webchat.db": 8192} {
		if err := os.WriteFile(filepath.Join(dir, path), make([]byte, n), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	got, err := dirSize(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got != 4096+100+8192 {
		t.Errorf("dirSize = %d, want %d", got, 4096+100+8192)
	}
}

func TestParseGoMemory(t *testing.T) {
	text := `# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 4012
go_memstats_heap_inuse_bytes 2.3068672e+07
go_memstats_stack_inuse_bytes 6.5536e+07
go_memstats_sys_bytes 1.0843e+08
go_memstats_heap_inuse_bytes_total 1
switchboard_queue_depth{direction="in"} 0
`
	got, ok := parseGoMemory(text)
	want := GoMemory{HeapInuse: 23068672, StackInuse: 65536000, Sys: 108430000, Goroutines: 4012}
	if !ok || got != want {
		t.Errorf("parseGoMemory = %+v, %v; want %+v", got, ok, want)
	}
	if _, ok := parseGoMemory("go_goroutines 3\n"); ok {
		t.Error("parseGoMemory with figures missing reported ok")
	}
}
