package telegram

import (
	"strconv"

	"github.com/mymmrac/telego"
	ta "github.com/mymmrac/telego/telegoapi"
)

// requestConstructor encodes telego's requests, as its default does,
// except the one the adapter sends for every user message: the "typing…"
// of sendChatAction, which it writes by hand. telego's default JSON
// encoder (github.com/grbit/go-json: a build without -tags stdjson, which
// make build sets) runs in a function whose stack frame is tens
// of kilobytes, and kit/typing sends from a goroutine of its own per chat,
// whose stack the encoder made the runtime grow by copying, for every
// message: 6% of the gateway's CPU at 500 round trips a second (the
// profile in docs/benchmarks.md).
type requestConstructor struct{ ta.DefaultConstructor }

// JSONRequest implements telegoapi.RequestConstructor.
func (c requestConstructor) JSONRequest(parameters any) (*ta.RequestData, error) {
	if p, ok := parameters.(*telego.SendChatActionParams); ok {
		if body, ok := chatActionJSON(p); ok {
			return &ta.RequestData{ContentType: ta.ContentTypeJSON, BodyRaw: body}, nil
		}
	}
	return c.DefaultConstructor.JSONRequest(parameters)
}

// chatActionJSON encodes p as telego's encoder would, for the parameters
// the adapter sets (a numeric chat id and a plain action); ok is false
// for any other, which the default encoder takes.
func chatActionJSON(p *telego.SendChatActionParams) (body []byte, ok bool) {
	if p.ChatID.ID == 0 || p.ChatID.Username != "" || p.BusinessConnectionID != "" || p.MessageThreadID != 0 || !plainAction(p.Action) {
		return nil, false
	}
	b := make([]byte, 0, 48+len(p.Action))
	b = append(b, `{"chat_id":`...)
	b = strconv.AppendInt(b, p.ChatID.ID, 10)
	b = append(b, `,"action":"`...)
	b = append(b, p.Action...)
	b = append(b, `"}`...)
	return b, true
}

// plainAction reports whether action, like all of Telegram's chat actions
// ("typing", "upload_photo"), needs no escaping in a JSON string.
func plainAction(action string) bool {
	if action == "" {
		return false
	}
	for i := 0; i < len(action); i++ {
		if c := action[i]; (c < 'a' || c > 'z') && c != '_' {
			return false
		}
	}
	return true
}
