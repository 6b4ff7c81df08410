package core

import (
	"strings"
	"testing"
	"time"
)

func TestDecodeConfig(t *testing.T) {
	type nested struct {
		Limit int `mapstructure:"limit"`
	}
	type cfg struct {
		Mode    string        `mapstructure:"mode"`
		Timeout time.Duration `mapstructure:"timeout"`
		Token   Secret        `mapstructure:"token"`
		Tags    []string      `mapstructure:"tags"`
		Nested  nested        `mapstructure:"nested"`
	}
	tests := []struct {
		name    string
		raw     RawConfig
		want    cfg
		wantErr []string
	}{
		{
			name: "all fields",
			raw:  RawConfig{"mode": "webhook", "timeout": "3s", "token": "t0k", "tags": []any{"a", "b"}, "nested": map[string]any{"limit": 5}},
			want: cfg{Mode: "webhook", Timeout: 3 * time.Second, Token: "t0k", Tags: []string{"a", "b"}, Nested: nested{Limit: 5}},
		},
		{
			name: "defaults kept",
			raw:  RawConfig{},
			want: cfg{Mode: "polling"},
		},
		{
			name:    "unknown keys named with their path",
			raw:     RawConfig{"mdoe": "x", "nested": map[string]any{"limt": 1}},
			wantErr: []string{"config.mdoe", "config.nested.limt"},
		},
		{
			name:    "wrong type named",
			raw:     RawConfig{"nested": map[string]any{"limit": "many"}},
			wantErr: []string{"config.nested.limit"},
		},
		{
			name:    "bad duration named",
			raw:     RawConfig{"timeout": "3 parsecs"},
			wantErr: []string{"config.timeout"},
		},
		{
			// YAML "timeout: 10" would otherwise be 10ns.
			name:    "duration without a unit named",
			raw:     RawConfig{"timeout": 10},
			wantErr: []string{`key config.timeout: "10" needs a unit, like 10s`},
		},
		{
			name:    "duration as a string without a unit named",
			raw:     RawConfig{"timeout": "2.5"},
			wantErr: []string{`key config.timeout: "2.5" needs a unit, like 2.5s`},
		},
		{
			name: "zero duration needs no unit",
			raw:  RawConfig{"timeout": 0},
			want: cfg{Mode: "polling"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := cfg{Mode: "polling"}
			err := DecodeConfig(tt.raw, &got)
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("DecodeConfig accepted %v", tt.raw)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not name %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Mode != tt.want.Mode || got.Timeout != tt.want.Timeout || got.Token != tt.want.Token ||
				strings.Join(got.Tags, ",") != strings.Join(tt.want.Tags, ",") || got.Nested != tt.want.Nested {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}
