package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
)

func TestParseFlagsDrivers(t *testing.T) {
	tests := []struct {
		args    []string
		drivers []string
		chats   map[string][]int
		err     string
	}{
		{args: nil, drivers: []string{"webchat", "telegram"},
			chats: map[string][]int{"webchat": {10, 1000}, "telegram": {10, 1000, 100000}}},
		{args: []string{"-quick"}, drivers: []string{"webchat", "telegram"},
			chats: map[string][]int{"webchat": {10, 1000}, "telegram": {10, 1000}}},
		{args: []string{"-quick", "-drivers", "telegram"}, drivers: []string{"telegram"},
			chats: map[string][]int{"telegram": {10, 1000}}},
		// The default's list for a driver that does not run is ignored.
		{args: []string{"-drivers", "telegram"}, drivers: []string{"telegram"},
			chats: map[string][]int{"telegram": {10, 1000, 100000}}},
		{args: []string{"-drivers", "discord,slack"}, drivers: []string{"discord", "slack"},
			chats: map[string][]int{"discord": {10, 1000}, "slack": {10, 1000}}},
		{args: []string{"-quick", "-drivers", "slack", "-chats", "slack=3"}, drivers: []string{"slack"},
			chats: map[string][]int{"slack": {3}}},
		{args: []string{"-driver", "webchat", "-chats", "5,50"}, drivers: []string{"webchat"},
			chats: map[string][]int{"webchat": {5, 50}}},
		{args: []string{"-drivers", "telegram,webchat", "-chats", "10;telegram=7"}, drivers: []string{"telegram", "webchat"},
			chats: map[string][]int{"webchat": {10}, "telegram": {7}}},
		{args: []string{"-drivers", "webchat,telegram", "-chats", "telegram=7"}, err: "no numbers of chats for driver webchat"},
		{args: []string{"-drivers", "webchat,smoke"}, err: `unknown driver "smoke"`},
		{args: []string{"-drivers", "webchat,webchat"}, err: "named twice"},
		{args: []string{"-chats", "irc=10"}, err: `unknown driver "irc"`},
		{args: []string{"-chats", "10 20"}, err: "two lists for every driver"},
		{args: []string{"-chats", "telegram=0"}, err: "not a positive whole number"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			o, err := parseFlags(tt.args)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want one saying %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(o.drivers, tt.drivers) {
				t.Errorf("drivers %v, want %v", o.drivers, tt.drivers)
			}
			if !maps.EqualFunc(o.chats, tt.chats, slices.Equal) {
				t.Errorf("chats %v, want %v", o.chats, tt.chats)
			}
		})
	}
}

func TestParseFlagsTargets(t *testing.T) {
	t.Setenv(envPGDSN, "")
	tests := []struct {
		args    []string
		targets []string
		pgChats map[string][]int
		err     string
	}{
		{args: nil, targets: []string{"relay", "gateway", "gateway-pg1", "gateway-pg2", "gateway-pg3"},
			pgChats: map[string][]int{"webchat": {1000}, "telegram": {1000}}},
		{args: []string{"-quick"}, targets: []string{"relay", "gateway", "gateway-pg2"},
			pgChats: map[string][]int{"webchat": {1000}, "telegram": {1000}}},
		{args: []string{"-quick", "-targets", "gateway-pg3"}, targets: []string{"gateway-pg3"},
			pgChats: map[string][]int{"webchat": {1000}, "telegram": {1000}}},
		{args: []string{"-quick", "-skip-pg"}, targets: []string{"relay", "gateway"},
			pgChats: map[string][]int{"webchat": {1000}, "telegram": {1000}}},
		{args: []string{"-skip-pg"}, targets: []string{"relay", "gateway"},
			pgChats: map[string][]int{"webchat": {1000}, "telegram": {1000}}},
		{args: []string{"-targets", "gateway-pg2", "-pg-chats", "telegram=50 10"}, targets: []string{"gateway-pg2"},
			pgChats: map[string][]int{"webchat": {10}, "telegram": {50}}},
		// -chats without -pg-chats: the PostgreSQL targets run at -chats too.
		{args: []string{"-targets", "gateway-pg2", "-chats", "10"}, targets: []string{"gateway-pg2"},
			pgChats: map[string][]int{"webchat": {10}, "telegram": {10}}},
		{args: []string{"-targets", "relay, gateway-pg8"}, targets: []string{"relay", "gateway-pg8"},
			pgChats: map[string][]int{"webchat": {1000}, "telegram": {1000}}},
		{args: []string{"-targets", "gateway-pg9"}, err: "at most 8 replicas"},
		{args: []string{"-targets", "gateway-pg0"}, err: `unknown target "gateway-pg0"`},
		{args: []string{"-targets", "sqlite"}, err: `unknown target "sqlite"`},
		{args: []string{"-targets", "gateway,gateway"}, err: "named twice"},
		{args: []string{"-targets", "gateway-pg1", "-skip-pg"}, err: "no target left"},
		{args: []string{"-pg-chats", "irc=1"}, err: "-pg-chats: unknown driver"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			o, err := parseFlags(tt.args)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want one saying %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(o.targets, tt.targets) {
				t.Errorf("targets %v, want %v", o.targets, tt.targets)
			}
			if !maps.EqualFunc(o.pgChats, tt.pgChats, slices.Equal) {
				t.Errorf("pg chats %v, want %v", o.pgChats, tt.pgChats)
			}
			if o.pgDSN != defaultPGDSN {
				t.Errorf("-pg %q, want the default %q", o.pgDSN, defaultPGDSN)
			}
		})
	}
}

func TestPGDSNFlag(t *testing.T) {
	t.Setenv(envPGDSN, "postgres://bench@db:5433/postgres")
	for args, want := range map[string]string{
		"":                                 "postgres://bench@db:5433/postgres",
		"-pg postgres://other@db/postgres": "postgres://other@db/postgres",
	} {
		o, err := parseFlags(strings.Fields(args))
		if err != nil {
			t.Fatal(err)
		}
		if o.pgDSN != want {
			t.Errorf("%q: -pg %q, want %q", args, o.pgDSN, want)
		}
	}
}

// The default plan: each driver's levels in turn, every target at the
// -chats levels but the replicas, which run at 1,000 chats only; a level
// only the replicas run at comes after the others.
func TestRunPlan(t *testing.T) {
	name := func(p []planned) []string {
		var out []string
		for _, r := range p {
			out = append(out, fmt.Sprintf("%s %d %s", r.driver, r.chats, r.target))
		}
		return out
	}
	o, err := parseFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"webchat 10 relay", "webchat 10 gateway",
		"webchat 1000 relay", "webchat 1000 gateway", "webchat 1000 gateway-pg1", "webchat 1000 gateway-pg2", "webchat 1000 gateway-pg3",
		"telegram 10 relay", "telegram 10 gateway",
		"telegram 1000 relay", "telegram 1000 gateway", "telegram 1000 gateway-pg1", "telegram 1000 gateway-pg2", "telegram 1000 gateway-pg3",
		"telegram 100000 relay", "telegram 100000 gateway",
	}
	if got := name(runPlan(o)); !slices.Equal(got, want) {
		t.Errorf("default plan\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	o, err = parseFlags([]string{"-drivers", "telegram", "-targets", "gateway,gateway-pg2", "-chats", "10", "-pg-chats", "500"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := name(runPlan(o)), []string{"telegram 10 gateway", "telegram 500 gateway-pg2"}; !slices.Equal(got, want) {
		t.Errorf("plan %v, want %v", got, want)
	}
	o, err = parseFlags([]string{"-skip-pg"})
	if err != nil {
		t.Fatal(err)
	}
	if got := runPlan(o); slices.ContainsFunc(got, func(p planned) bool { return pgReplicas(p.target) > 0 }) {
		t.Errorf("-skip-pg plan has PostgreSQL runs: %v", name(got))
	}
}
