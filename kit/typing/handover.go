package typing

import (
	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/kit/cache"
)

// Handovers remembers the dialogs that a human operator has taken over
// (Selarti's operator flag, and the dialog not closed): "typing…" is not
// shown in them after a user's message, because a human may take
// minutes. Bounded: the least recently noted dialogs are forgotten first.
// Safe for concurrent use.
type Handovers struct {
	human *cache.Cache[string, struct{}]
}

// NewHandovers returns a Handovers that remembers at most size dialogs.
func NewHandovers(size int) *Handovers {
	return &Handovers{human: cache.New[string, struct{}](size, 0)}
}

// Note records a dialog's state (from Outbound.Dialog or a DialogEvent),
// and reports whether "typing…" should stop at once: a human has the
// dialog now, or it is closed.
func (h *Handovers) Note(native string, d core.DialogState) (stopTyping bool) {
	if d.Operator && !d.Closed {
		h.human.Put(native, struct{}{})
		return true
	}
	h.human.Remove(native)
	return d.Closed
}

// Human reports whether a human operator has the dialog.
func (h *Handovers) Human(native string) bool { return h.human.Has(native) }
