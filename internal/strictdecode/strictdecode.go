// Package strictdecode decodes a YAML tree into a struct and refuses any
// key the struct does not know, naming it with its full path. It is the
// one decoder of the gateway's config and of every adapter's block
// (core.DecodeConfig), so that a typo is an error everywhere alike.
package strictdecode

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
)

// Decode decodes in into out (fields tagged `mapstructure:"name"`),
// reporting keys out does not know, and type errors, under prefix
// ("config" gives "config.mode"). Durations take Go syntax ("30s") and
// need a unit (see durationHook); comma-separated strings decode into
// slices; input is weakly typed ("12" decodes into an int).
func Decode(in any, out any, prefix string) error {
	var md mapstructure.Metadata
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		DecodeHook: mapstructure.ComposeDecodeHookFunc(
			durationHook,
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

var durationType = reflect.TypeFor[time.Duration]()

// durationHook decodes a time.Duration from Go syntax ("30s", "1m30s")
// and refuses a bare number, "timeout: 10": weakly typed, mapstructure
// would take it as 10ns, which no operator means, and the gateway would
// then time out at once. Zero needs no unit: it is zero in every unit.
func durationHook(from, to reflect.Type, data any) (any, error) {
	if to != durationType {
		return data, nil
	}
	switch v := data.(type) {
	case time.Duration:
		return v, nil
	case string:
		s := strings.TrimSpace(v)
		if _, err := strconv.ParseFloat(s, 64); err == nil {
			return bareDuration(s)
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not a duration (write it like 30s, 1m or 1h30m)", v)
		}
		return d, nil
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32, float64:
		return bareDuration(fmt.Sprint(v))
	}
	return data, nil
}

// bareDuration is a duration written as a number without a unit: 0, or
// an error saying a unit is needed.
func bareDuration(s string) (any, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil && f == 0 {
		return time.Duration(0), nil
	}
	return nil, fmt.Errorf("%q needs a unit, like %ss", s, s)
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
