package telegram

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// maxChatLimiters bounds the per-chat limiters kept. Past it, limiters
// that are full again (their chat has been quiet) are dropped: a fresh
// limiter behaves exactly like a full one, so nothing is lost.
const maxChatLimiters = 10000

// limiter keeps the bot under Telegram's send limits: about 30 messages a
// second overall, one a second per private chat (short bursts are
// tolerated), 20 a minute per group. Going over them earns 429s with
// retry_after of up to minutes for the whole bot, so waiting here is much
// cheaper than being told off.
type limiter struct {
	global *rate.Limiter

	chatEvery  rate.Limit
	chatBurst  int
	groupEvery rate.Limit
	groupBurst int

	mu    sync.Mutex
	chats map[int64]*rate.Limiter
}

func newLimiter(cfg *Config) *limiter {
	return &limiter{
		global:     rate.NewLimiter(rate.Limit(cfg.GlobalRateLimit), max(1, int(cfg.GlobalRateLimit))),
		chatEvery:  rate.Limit(cfg.ChatRateLimit),
		chatBurst:  cfg.ChatBurst,
		groupEvery: rate.Every(time.Minute / time.Duration(cfg.GroupRateLimit)),
		groupBurst: min(cfg.ChatBurst, cfg.GroupRateLimit),
		chats:      make(map[int64]*rate.Limiter),
	}
}

// wait blocks until one message may go to chat, or ctx is done. The chat's
// own limit is waited for first, so that a busy chat does not hold
// tokens of the global limit while it waits.
func (l *limiter) wait(ctx context.Context, chat int64) error {
	if err := l.chat(chat).Wait(ctx); err != nil {
		return fmt.Errorf("wait for the chat's send limit: %w", err)
	}
	if err := l.global.Wait(ctx); err != nil {
		return fmt.Errorf("wait for the bot's send limit: %w", err)
	}
	return nil
}

func (l *limiter) chat(chat int64) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	if lim, ok := l.chats[chat]; ok {
		return lim
	}
	if len(l.chats) >= maxChatLimiters {
		now := time.Now()
		for id, lim := range l.chats {
			if lim.TokensAt(now) >= float64(lim.Burst()) {
				delete(l.chats, id)
			}
		}
	}
	// Group and supergroup ids are negative, user ids positive.
	lim := rate.NewLimiter(l.chatEvery, l.chatBurst)
	if chat < 0 {
		lim = rate.NewLimiter(l.groupEvery, l.groupBurst)
	}
	l.chats[chat] = lim
	return lim
}
