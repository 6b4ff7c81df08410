package core

import "github.com/switchboard-gw/switchboard/internal/strictdecode"

// DecodeConfig decodes an adapter's raw "config:" block into out, a pointer
// to the adapter's Config struct (fields tagged `mapstructure:"name"`). It
// is strict: a key the struct does not know is an error that names the
// key, so a typo never silently falls back to a default. Durations take Go
// syntax ("30s", "1m"); Secret fields take plain strings; a
// comma-separated string decodes into a slice.
//
// Set defaults on *out before calling; keys absent from raw keep them.
func DecodeConfig(raw RawConfig, out any) error {
	return strictdecode.Decode(map[string]any(raw), out, "config")
}
