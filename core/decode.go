package core

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/go-viper/mapstructure/v2"
)

// DecodeConfig decodes an adapter's raw "config:" block into out, a pointer
// to the adapter's Config struct (fields tagged `mapstructure:"name"`). It
// is strict: a key the struct does not know is an error that names the
// key, so a typo never silently falls back to a default. Durations take Go
// syntax ("30s", "1m"); Secret fields take plain strings.
//
// Set defaults on *out before calling; keys absent from raw keep them.
func DecodeConfig(raw RawConfig, out any) error {
	return decodeStrict(map[string]any(raw), out, "config")
}

// decodeStrict decodes in into out, reporting unknown keys under prefix.
func decodeStrict(in any, out any, prefix string) error {
	var md mapstructure.Metadata
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		DecodeHook: mapstructure.ComposeDecodeHookFunc(
			mapstructure.StringToTimeDurationHookFunc(),
			mapstructure.StringToSliceHookFunc(","),
		),
		WeaklyTypedInput: true,
		Metadata:         &md,
		Result:           out,
	})
	if err != nil {
		return fmt.Errorf("build decoder: %w", err)
	}
	if err := dec.Decode(in); err != nil {
		return rewriteDecodeError(err, prefix)
	}
	if len(md.Unused) > 0 {
		sort.Strings(md.Unused)
		keys := make([]string, len(md.Unused))
		for i, k := range md.Unused {
			keys[i] = joinKey(prefix, k)
		}
		return fmt.Errorf("unknown key %s", strings.Join(keys, ", "))
	}
	return nil
}

// rewriteDecodeError turns mapstructure's messages, which name fields
// relative to the decoded value ("'mode' expected type 'string'") or not
// at all ("” has invalid keys"), into messages that name the full key.
func rewriteDecodeError(err error, prefix string) error {
	var msgs []string
	var joined interface{ Unwrap() []error }
	if errors.As(err, &joined) {
		for _, e := range joined.Unwrap() {
			msgs = append(msgs, e.Error())
		}
	} else {
		msgs = []string{err.Error()}
	}
	for i, m := range msgs {
		m = strings.TrimPrefix(m, "decoding failed due to the following error(s):\n\n")
		if name, rest, ok := strings.Cut(m, "' "); ok && strings.HasPrefix(name, "'") {
			m = "key " + joinKey(prefix, strings.TrimPrefix(name, "'")) + ": " + rest
		}
		msgs[i] = m
	}
	return errors.New(strings.Join(msgs, "; "))
}

func joinKey(prefix, key string) string {
	switch {
	case key == "":
		return prefix
	case prefix == "":
		return key
	}
	return prefix + "." + key
}
