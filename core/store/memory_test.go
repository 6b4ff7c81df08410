package store_test

import (
	"testing"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/core/store"
	"github.com/switchboard-gw/switchboard/core/store/storetest"
)

func TestMemory(t *testing.T) {
	storetest.Run(t, func(*testing.T) store.Store { return store.NewMemory() })
}

func TestMemoryLeaser(t *testing.T) {
	storetest.RunLeaser(t, func(*testing.T) store.Leaser { return store.NewMemory() })
}

func TestMemoryHeads(t *testing.T) {
	storetest.RunHeads(t, func(*testing.T) store.Store { return store.NewMemory() })
}

func TestMemoryJournals(t *testing.T) {
	storetest.RunJournals(t, func(t *testing.T) (a, b core.Journals) {
		st := store.NewMemory()
		t.Cleanup(func() { st.Close() })
		return st.Journals("web"), st.Journals("web")
	})
}

func TestMemoryJournalsIsolated(t *testing.T) {
	storetest.RunJournalsIsolated(t, func(t *testing.T) (web, other core.Journals) {
		st := store.NewMemory()
		t.Cleanup(func() { st.Close() })
		return st.Journals("web"), st.Journals("other")
	})
}
