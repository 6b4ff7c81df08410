package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

var _ Leaser = (*Memory)(nil)

// memLease is one lease Memory holds.
type memLease struct {
	owner string
	until time.Time
}

// AcquireLease implements Leaser. Memory is shared only within one process
// (two gateways in one test), which is enough to test what leases are for.
func (s *Memory) AcquireLease(ctx context.Context, name, owner string, now time.Time, ttl time.Duration) (bool, string, error) {
	if err := checkLease(name, owner, ttl); err != nil {
		return false, "", fmt.Errorf("acquire lease %s: %w", name, err)
	}
	if err := s.lock(ctx); err != nil {
		return false, "", fmt.Errorf("acquire lease %s: %w", name, err)
	}
	defer s.mu.Unlock()
	l, ok := s.leases[name]
	if ok && l.owner != owner && now.Before(l.until) {
		return false, "", nil
	}
	prev := ""
	if ok && l.owner != owner {
		prev = l.owner
	}
	s.leases[name] = memLease{owner: owner, until: now.Add(ttl)}
	return true, prev, nil
}

// ReleaseLease implements Leaser.
func (s *Memory) ReleaseLease(ctx context.Context, name, owner string) error {
	if err := s.lock(ctx); err != nil {
		return fmt.Errorf("release lease %s: %w", name, err)
	}
	defer s.mu.Unlock()
	if l, ok := s.leases[name]; ok && l.owner == owner {
		delete(s.leases, name)
	}
	return nil
}

// checkLease rejects arguments no lease can have.
func checkLease(name, owner string, ttl time.Duration) error {
	switch {
	case name == "" || owner == "":
		return errors.New("name and owner must not be empty")
	case ttl <= 0:
		return errors.New("ttl must be positive")
	}
	return nil
}
