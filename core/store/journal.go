package store

import (
	"fmt"

	"github.com/switchboard-gw/switchboard/core"
)

// The limits of core.Journals, which every store's journals enforce.
const (
	// MaxJournalKey bounds a journal's key, its name and an entry's key,
	// in bytes.
	MaxJournalKey = 256
	// MaxJournalData bounds an entry's data, in bytes.
	MaxJournalData = 1 << 20
)

// checkJournalText rejects a journal key, name or entry key over
// MaxJournalKey bytes with an error wrapping core.ErrJournalLimit.
func checkJournalText(what, s string) error {
	if len(s) > MaxJournalKey {
		return fmt.Errorf("%s of %d bytes, over %d: %w", what, len(s), MaxJournalKey, core.ErrJournalLimit)
	}
	return nil
}

// checkJournalAppend checks all that Append is given against the limits.
func checkJournalAppend(key string, e core.JournalEntry, opts core.AppendOptions) error {
	if err := checkJournalText("journal key", key); err != nil {
		return err
	}
	if err := checkJournalText("entry key", e.Key); err != nil {
		return err
	}
	if len(e.Data) > MaxJournalData {
		return fmt.Errorf("entry data of %d bytes, over %d: %w", len(e.Data), MaxJournalData, core.ErrJournalLimit)
	}
	if err := checkJournalText("journal name", opts.Name); err != nil {
		return err
	}
	if opts.Create != nil {
		if err := checkJournalText("journal name", opts.Create.Name); err != nil {
			return err
		}
	}
	return nil
}
