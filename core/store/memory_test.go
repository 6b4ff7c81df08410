package store_test

import (
	"testing"

	"github.com/switchboard-gw/switchboard/core/store"
	"github.com/switchboard-gw/switchboard/core/store/storetest"
)

func TestMemory(t *testing.T) {
	storetest.Run(t, func(*testing.T) store.Store { return store.NewMemory() })
}
