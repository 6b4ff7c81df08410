package telegram

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/mymmrac/telego"
	ta "github.com/mymmrac/telego/telegoapi"
)

// TestTelegoUnderstandsTheFake runs the client library the adapter uses
// against the fake: its answers decode into telego's types, and its errors
// into telego's *telegoapi.Error with the parameters.
func TestTelegoUnderstandsTheFake(t *testing.T) {
	s, b := startBot(t, Options{})
	bot, err := telego.NewBot(b.Token(), telego.WithAPIServer(s.URL()),
		telego.WithHTTPClient(&http.Client{Timeout: 10 * time.Second}), telego.WithDiscardLogger())
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxTimeout(t, 10*time.Second)

	me, err := bot.GetMe(ctx)
	if err != nil || me.ID != b.User().ID || me.Username != "shop_bot" || !me.IsBot {
		t.Fatalf("GetMe = %+v, %v", me, err)
	}
	contact := User{ID: 5, FirstName: "Bo"}
	b.Push(Update{Message: &Message{From: &ann, Contact: &Contact{PhoneNumber: "+15550001", FirstName: "Ann", UserID: ann.ID}}})
	b.Push(Update{Message: &Message{From: &contact, Sticker: &Sticker{Emoji: "👍"}, ReplyToMessage: &Message{MessageID: 1, Chat: PrivateChat(contact)}}})
	ups, err := bot.GetUpdates(ctx, &telego.GetUpdatesParams{Timeout: 1, AllowedUpdates: []string{"message"}})
	if err != nil || len(ups) != 2 {
		t.Fatalf("GetUpdates = %+v, %v", ups, err)
	}
	if c := ups[0].Message.Contact; c == nil || c.PhoneNumber != "+15550001" || c.UserID != ann.ID || ups[0].Message.Chat.Type != "private" {
		t.Fatalf("contact update = %+v", ups[0].Message)
	}
	if st := ups[1].Message.Sticker; st == nil || st.Emoji != "👍" || st.FileID == "" || ups[1].Message.ReplyToMessage == nil {
		t.Fatalf("sticker update = %+v", ups[1].Message)
	}

	msg, err := bot.SendMessage(ctx, &telego.SendMessageParams{ChatID: telego.ChatID{ID: ann.ID}, Text: "<b>hi</b>", ParseMode: telego.ModeHTML})
	if err != nil || msg.Text != "hi" || len(msg.Entities) != 1 || msg.Entities[0].Type != "bold" {
		t.Fatalf("SendMessage = %+v, %v", msg, err)
	}

	b.FailNext("sendMessage", TooManyRequests(7))
	_, err = bot.SendMessage(ctx, &telego.SendMessageParams{ChatID: telego.ChatID{ID: ann.ID}, Text: "x"})
	var apiErr *ta.Error
	if !errors.As(err, &apiErr) || apiErr.ErrorCode != 429 || apiErr.Parameters == nil || apiErr.Parameters.RetryAfter != 7 {
		t.Fatalf("429 error = %v, want a telegoapi.Error with retry_after 7", err)
	}

	if err := bot.SetWebhook(context.Background(), &telego.SetWebhookParams{URL: "https://gw.example.com/hook", SecretToken: "abc"}); err != nil {
		t.Fatal(err)
	}
	info, err := bot.GetWebhookInfo(ctx)
	if err != nil || info.URL != "https://gw.example.com/hook" {
		t.Fatalf("GetWebhookInfo = %+v, %v", info, err)
	}
	if err := bot.DeleteWebhook(ctx, &telego.DeleteWebhookParams{}); err != nil {
		t.Fatal(err)
	}
	f, err := bot.GetFile(ctx, &telego.GetFileParams{FileID: ups[1].Message.Sticker.FileID})
	if err != nil || f.FilePath == "" {
		t.Fatalf("GetFile = %+v, %v", f, err)
	}
}
