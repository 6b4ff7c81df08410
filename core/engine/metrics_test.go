package engine

import (
	"log/slog"
	"testing"

	"github.com/switchboard-gw/switchboard/core"
)

// TestAdapterUpFromConstruction: every enabled instance has a
// switchboard_adapter_up series, at 0, as soon as the gateway is built,
// so that an alert on == 0 fires for one that never started; a disabled
// instance has none.
func TestAdapterUpFromConstruction(t *testing.T) {
	reg := core.NewRegistry()
	reg.Register("test", func(core.Instance) (core.Messenger, error) { return &lifecycleMessenger{}, nil })
	off := false
	cfg := testGatewayConfig(t,
		AdapterConfig{Name: "web", Kind: "test", TaskID: "task"},
		AdapterConfig{Name: "idle", Kind: "test", TaskID: "task", Enabled: &off},
	)
	gw, err := New(cfg, Options{Registry: reg, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	mfs, err := gw.metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "switchboard_adapter_up" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			if labels["kind"] != "test" {
				t.Errorf("series %v: kind %q, want test", labels, labels["kind"])
			}
			got[labels["instance"]] = m.GetGauge().GetValue()
		}
	}
	if v, ok := got["web"]; !ok || v != 0 {
		t.Errorf("switchboard_adapter_up{instance=web}: %v (present %v), want a series at 0 before Start", v, ok)
	}
	if _, ok := got["idle"]; ok {
		t.Errorf("a disabled instance has a switchboard_adapter_up series")
	}
}
