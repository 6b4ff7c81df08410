package store

import (
	"context"
	"fmt"
)

var _ Heads = (*Memory)(nil)

// Head implements Heads.
func (s *Memory) Head(ctx context.Context, dir Direction, chat string) (Message, error) {
	if err := s.lock(ctx); err != nil {
		return Message{}, fmt.Errorf("read the head of a chat: %w", err)
	}
	defer s.mu.Unlock()
	q := s.pending.queues[chatKey{dir, chat}]
	if q == nil || len(q.ids) == 0 {
		return Message{}, fmt.Errorf("read the head of a chat: %w", ErrNotFound)
	}
	return clone(s.msgs[q.ids[0]]), nil
}
