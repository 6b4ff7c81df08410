package core

import (
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Registry maps adapter kinds to their factories. The binary uses the
// default registry, filled by the init functions of the adapter packages;
// tests that need kinds of their own make an isolated one with NewRegistry.
type Registry struct {
	mu        sync.RWMutex
	factories map[string]Factory
}

// defaultRegistry is the only package-level state in core.
var defaultRegistry = NewRegistry()

// NewRegistry returns an empty, isolated registry.
func NewRegistry() *Registry {
	return &Registry{factories: make(map[string]Factory)}
}

// DefaultRegistry returns the registry that Register fills.
func DefaultRegistry() *Registry { return defaultRegistry }

// Register adds a kind to the default registry. Call it from an adapter
// package's init function. It panics on an empty or invalid kind, a nil
// factory or a duplicate kind: those are programming errors found at
// start-up, never input errors.
func Register(kind string, f Factory) { defaultRegistry.Register(kind, f) }

// Register adds a kind to r. See the package-level Register.
func (r *Registry) Register(kind string, f Factory) {
	if !ValidInstanceName(kind) {
		panic(fmt.Sprintf("core: invalid adapter kind %q", kind))
	}
	if f == nil {
		panic(fmt.Sprintf("core: nil factory for adapter kind %q", kind))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.factories[kind]; dup {
		panic(fmt.Sprintf("core: adapter kind %q registered twice", kind))
	}
	r.factories[kind] = f
}

// Kinds lists the registered kinds, sorted.
func (r *Registry) Kinds() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	kinds := make([]string, 0, len(r.factories))
	for k := range r.factories {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	return kinds
}

// Factory returns the factory for kind, or an error that lists the known
// kinds so that a typo is easy to fix.
func (r *Registry) Factory(kind string) (Factory, error) {
	r.mu.RLock()
	f, ok := r.factories[kind]
	r.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("unknown adapter kind %q (known: %s)", kind, strings.Join(r.Kinds(), ", "))
	}
	return f, nil
}
