package core

import (
	"errors"
	"fmt"
	"regexp"
)

// Limits every adapter can check before it hands a message to the core:
// the core refuses, as permanent, what breaks them (see DeliverFunc).
const (
	// MaxNativeIDLen bounds a native chat id. Every network we know of
	// uses far shorter ids; the bound keeps a hostile client from making
	// the gateway store or log megabytes.
	MaxNativeIDLen = 256

	// MaxInboundTextBytes bounds one user message. Messengers have their
	// own, smaller limits (Telegram 4096 characters); this one keeps a
	// misbehaving adapter or client from filling the store.
	MaxInboundTextBytes = 32 << 10
)

// instanceNameRE is the grammar of instance names and adapter kinds.
// Names are also chat-id namespaces and appear in URLs and metric
// labels, so they are kept to a small, case-insensitive-safe alphabet
// (viper lowercases map keys).
var instanceNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// ValidInstanceName reports whether name may name an adapter instance
// (or an adapter kind).
func ValidInstanceName(name string) bool { return instanceNameRE.MatchString(name) }

// CheckNativeID reports why native cannot be a native chat id, or nil:
// it must be non-empty, at most MaxNativeIDLen bytes, and free of
// control characters (it ends up in logs and in Selarti's dialog list).
func CheckNativeID(native string) error {
	if native == "" {
		return errors.New("empty native id")
	}
	if len(native) > MaxNativeIDLen {
		return fmt.Errorf("native id longer than %d bytes", MaxNativeIDLen)
	}
	for _, r := range native {
		if r < 0x20 || r == 0x7f {
			return errors.New("control character in native id")
		}
	}
	return nil
}
