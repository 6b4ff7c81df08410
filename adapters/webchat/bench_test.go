package webchat

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/switchboard-gw/switchboard/core"
)

// BenchmarkSend measures Send, which commits every message to the mailbox
// (synchronous=FULL) before it returns: one session at a time, and many
// sessions at once, whose commits the committer shares.
func BenchmarkSend(b *testing.B) {
	for _, bc := range []struct {
		name     string
		parallel int // goroutines per GOMAXPROCS; 0: serial
		sessions int
	}{
		{name: "serial", sessions: 1},
		{name: "parallel-64-sessions", parallel: 32, sessions: 64},
		{name: "parallel-1000-sessions", parallel: 64, sessions: 1000},
	} {
		b.Run(bc.name, func(b *testing.B) {
			m, err := New(core.Instance{Name: "web", Kind: Kind, DataDir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			a := m.(*Adapter)
			if err := a.Start(context.Background(), (&fakeCore{}).deliver); err != nil {
				b.Fatal(err)
			}
			defer a.Stop(context.Background())
			ids := make([]string, bc.sessions)
			for i := range ids {
				ids[i] = newSessionID()
			}
			var n atomic.Int64
			send := func() {
				i := n.Add(1)
				err := a.Send(context.Background(), core.Outbound{ChatID: ids[int(i)%len(ids)], ID: fmt.Sprint("m", i), Text: "a reply of a typical length, with some **Markdown** in it", From: core.SenderBot})
				if err != nil {
					b.Error(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			if bc.parallel == 0 {
				for b.Loop() {
					send()
				}
				return
			}
			b.SetParallelism(bc.parallel)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					send()
				}
			})
		})
	}
}
