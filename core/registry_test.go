package core

import (
	"context"
	"slices"
	"strings"
	"testing"
)

type nopMessenger struct{}

func (nopMessenger) Start(context.Context, DeliverFunc) error { return nil }
func (nopMessenger) Send(context.Context, Outbound) error     { return nil }
func (nopMessenger) Stop(context.Context) error               { return nil }

func nopFactory(Instance) (Messenger, error) { return nopMessenger{}, nil }

func TestRegistryKindsSorted(t *testing.T) {
	r := NewRegistry()
	for _, k := range []string{"telegram", "discord", "webchat", "slack"} {
		r.Register(k, nopFactory)
	}
	if got, want := r.Kinds(), []string{"discord", "slack", "telegram", "webchat"}; !slices.Equal(got, want) {
		t.Fatalf("Kinds() = %v, want %v", got, want)
	}
}

func TestRegistryUnknownKindListsKnown(t *testing.T) {
	r := NewRegistry()
	r.Register("telegram", nopFactory)
	r.Register("webchat", nopFactory)
	_, err := r.Factory("telegrm")
	want := `unknown adapter kind "telegrm" (known: telegram, webchat)`
	if err == nil || err.Error() != want {
		t.Fatalf("Factory(telegrm) error = %v, want %q", err, want)
	}
}

func TestRegistryPanicsOnProgrammingErrors(t *testing.T) {
	tests := []struct {
		name    string
		kind    string
		factory Factory
		want    string
	}{
		{name: "duplicate", kind: "dup", factory: nopFactory, want: "registered twice"},
		{name: "empty kind", kind: "", factory: nopFactory, want: "invalid adapter kind"},
		{name: "nil factory", kind: "nilf", factory: nil, want: "nil factory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRegistry()
			r.Register("dup", nopFactory)
			defer func() {
				p := recover()
				if p == nil || !strings.Contains(p.(string), tt.want) {
					t.Fatalf("panic = %v, want one containing %q", p, tt.want)
				}
			}()
			r.Register(tt.kind, tt.factory)
		})
	}
}

func TestRegistriesAreIsolated(t *testing.T) {
	a, b := NewRegistry(), NewRegistry()
	a.Register("only-in-a", nopFactory)
	if _, err := b.Factory("only-in-a"); err == nil {
		t.Fatal("registry b sees a kind registered in a")
	}
	if slices.Contains(DefaultRegistry().Kinds(), "only-in-a") {
		t.Fatal("default registry sees a kind registered in an isolated one")
	}
}
