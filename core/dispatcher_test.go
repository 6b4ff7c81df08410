package core

import (
	"testing"
	"time"
)

func TestRetryPolicyBackoff(t *testing.T) {
	p := retryPolicy{initial: time.Second, max: time.Minute}
	tests := []struct {
		failures int
		base     time.Duration
	}{
		{1, time.Second},
		{2, 2 * time.Second},
		{3, 4 * time.Second},
		{6, 32 * time.Second},
		{7, time.Minute}, // 64s capped
		{50, time.Minute},
	}
	for _, tt := range tests {
		for range 50 {
			got := p.backoff(tt.failures)
			if got < tt.base/2 || got > tt.base {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", tt.failures, got, tt.base/2, tt.base)
			}
		}
	}
}
