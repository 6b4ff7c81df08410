package engine

import (
	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/core/selarti"
)

// Bits of DialogState as stored (store.Store keeps flags as a uint32).
// Never renumber: the numbers are on disk.
const (
	flagClosed uint32 = 1 << iota
	flagOperator
	flagGotContact
	flagInterest
	flagSuccess
)

// dialogFlags is d as the store keeps it.
func dialogFlags(d core.DialogState) uint32 {
	var f uint32
	set := func(on bool, bit uint32) {
		if on {
			f |= bit
		}
	}
	set(d.Closed, flagClosed)
	set(d.Operator, flagOperator)
	set(d.GotContact, flagGotContact)
	set(d.Interest, flagInterest)
	set(d.Success, flagSuccess)
	return f
}

func dialogFromFlags(f uint32) core.DialogState {
	return core.DialogState{
		Closed:     f&flagClosed != 0,
		Operator:   f&flagOperator != 0,
		GotContact: f&flagGotContact != 0,
		Interest:   f&flagInterest != 0,
		Success:    f&flagSuccess != 0,
	}
}

func dialogFromWebhook(wh selarti.Webhook) core.DialogState {
	return core.DialogState{
		Closed:     wh.Close,
		Operator:   wh.Operator,
		GotContact: wh.GetContact,
		Interest:   wh.Interest,
		Success:    wh.Success,
	}
}

type flagChange struct {
	flag  string
	value bool
}

// dialogChanges lists the flags that differ between d and next, named as
// in Selarti's webhook.
func dialogChanges(d, next core.DialogState) []flagChange {
	var out []flagChange
	add := func(name string, a, b bool) {
		if a != b {
			out = append(out, flagChange{name, b})
		}
	}
	add(selarti.FieldClose, d.Closed, next.Closed)
	add(selarti.FieldOperator, d.Operator, next.Operator)
	add(selarti.FieldGetContact, d.GotContact, next.GotContact)
	add(selarti.FieldInterest, d.Interest, next.Interest)
	add(selarti.FieldSuccess, d.Success, next.Success)
	return out
}
