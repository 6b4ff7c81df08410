// Package strictdecode decodes a YAML tree into a struct and refuses any
// key the struct does not know, naming it with its full path. It is the
// one decoder of the gateway's config and of every adapter's block
// (core.DecodeConfig), so that a typo is an error everywhere alike.
package strictdecode

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/go-viper/mapstructure/v2"
)

// Decode decodes in into out (fields tagged `mapstructure:"name"`),
// reporting keys out does not know, and type errors, under prefix
// ("config" gives "config.mode"). Durations take Go syntax ("30s");
// comma-separated strings decode into slices; input is weakly typed
// ("12" decodes into an int).
func Decode(in any, out any, prefix string) error {
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
			keys[i] = JoinKey(prefix, k)
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
			m = "key " + JoinKey(prefix, strings.TrimPrefix(name, "'")) + ": " + rest
		}
		msgs[i] = m
	}
	return errors.New(strings.Join(msgs, "; "))
}

// JoinKey joins a key path: JoinKey("config", "mode") is "config.mode".
func JoinKey(prefix, key string) string {
	switch {
	case key == "":
		return prefix
	case prefix == "":
		return key
	}
	return prefix + "." + key
}
