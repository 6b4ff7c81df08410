package main

import (
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
