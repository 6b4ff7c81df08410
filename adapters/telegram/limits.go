package telegram

import (
	"time"

	"golang.org/x/time/rate"

	"github.com/switchboard-gw/switchboard/kit/ratelimit"
)

// newLimiter keeps the bot under Telegram's send limits: about 30
// messages a second overall, one a second per private chat (short bursts
// are tolerated), 20 a minute per group. Going over them earns 429s with
// retry_after of up to minutes for the whole bot.
func newLimiter(cfg *Config) *ratelimit.Limiter[int64] {
	return ratelimit.New(ratelimit.Options[int64]{
		Keys:        maxChatLimiters,
		PerKey:      func(chat int64) (rate.Limit, int) { return chatLimit(cfg, chat) },
		Global:      rate.Limit(cfg.GlobalRateLimit),
		GlobalBurst: max(1, int(cfg.GlobalRateLimit)),
	})
}

// chatLimit is the rate and burst of one chat. Group and supergroup ids
// are negative, user ids positive.
func chatLimit(cfg *Config, chat int64) (rate.Limit, int) {
	if chat < 0 {
		return rate.Every(time.Minute / time.Duration(cfg.GroupRateLimit)), min(cfg.ChatBurst, cfg.GroupRateLimit)
	}
	return rate.Limit(cfg.ChatRateLimit), cfg.ChatBurst
}
