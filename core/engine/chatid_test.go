package engine

import (
	"github.com/switchboard-gw/switchboard/core"
	"strings"
	"testing"
)

func TestParseChatID(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		instance string
		native   string
		wantErr  string
	}{
		{name: "telegram user", in: "tg-sales:123456789", instance: "tg-sales", native: "123456789"},
		{name: "native with colons", in: "slack:T123:C456:1700000000.000100", instance: "slack", native: "T123:C456:1700000000.000100"},
		{name: "negative group id", in: "tg:-1001234567890", instance: "tg", native: "-1001234567890"},
		{name: "unicode native", in: "web:сессия", instance: "web", native: "сессия"},
		{name: "no colon", in: "tg-sales", wantErr: "missing"},
		{name: "empty", in: "", wantErr: "missing"},
		{name: "empty instance", in: ":123", wantErr: "invalid instance"},
		{name: "uppercase instance", in: "TG:1", wantErr: "invalid instance"},
		{name: "instance with underscore", in: "tg_sales:1", wantErr: "invalid instance"},
		{name: "instance starting with dash", in: "-tg:1", wantErr: "invalid instance"},
		{name: "empty native", in: "tg:", wantErr: "empty native"},
		{name: "control char", in: "tg:12\n3", wantErr: "control character"},
		{name: "too long", in: "tg:" + strings.Repeat("9", core.MaxNativeIDLen+1), wantErr: "longer than"},
		{name: "max length ok", in: "tg:" + strings.Repeat("9", core.MaxNativeIDLen), instance: "tg", native: strings.Repeat("9", core.MaxNativeIDLen)},
		{name: "instance too long", in: strings.Repeat("a", 64) + ":1", wantErr: "invalid instance"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseChatID(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseChatID(%q) error = %v, want one containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseChatID(%q): %v", tt.in, err)
			}
			if got.Instance != tt.instance || got.Native != tt.native {
				t.Fatalf("ParseChatID(%q) = %+v, want %s / %s", tt.in, got, tt.instance, tt.native)
			}
			if got.String() != tt.in {
				t.Fatalf("String() = %q, want %q", got.String(), tt.in)
			}
		})
	}
}

func TestNewChatIDRoundTrip(t *testing.T) {
	c, err := NewChatID("web", "a:b:c")
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseChatID(c.String())
	if err != nil || back != c {
		t.Fatalf("round trip: got %+v, %v; want %+v", back, err, c)
	}
	if _, err := NewChatID("Web", "1"); err == nil {
		t.Fatal("NewChatID accepted an invalid instance name")
	}
}

// FuzzParseChatID checks that parsing never panics, that what parses
// round-trips exactly, and that the parts obey the documented grammar.
func FuzzParseChatID(f *testing.F) {
	for _, s := range []string{"tg:1", "slack:T1:C2", ":", "a:", ":b", "web:\x00", "x:" + strings.Repeat("z", 300), "tg-sales:-100123"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseChatID(s)
		if err != nil {
			return
		}
		if c.String() != s {
			t.Fatalf("round trip %q -> %q", s, c.String())
		}
		if !core.ValidInstanceName(c.Instance) || c.Native == "" || len(c.Native) > core.MaxNativeIDLen || strings.Contains(c.Instance, ":") {
			t.Fatalf("accepted invalid parts %+v", c)
		}
	})
}
