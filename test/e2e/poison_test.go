package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/core/engine"
	"github.com/switchboard-gw/switchboard/core/store"
)

// TestPoisonChatDeadLettersAndReplay: a chat whose messages the network
// refuses for good ends in the dead letters with its error, other chats
// are not held up, the admin API shows it, and a replay (as `switchboard
// deadletters replay` does it, beside the running gateway) delivers it
// once the cause is fixed.
func TestPoisonChatDeadLettersAndReplay(t *testing.T) {
	adminToken := strings.Repeat("a", 40)
	e := newEnv(t, envOptions{
		adapters: []engine.AdapterConfig{testChatAdapter("chat", "task")},
		cfgEdit:  func(c *engine.Config) { c.Admin.Token = core.Secret(adminToken) },
	})
	ctx := context.Background()
	chat := e.chats.get("chat")
	chat.setFail(func(m core.Outbound) error {
		if m.ChatID == "poison" {
			return core.Permanent(errors.New("forbidden: bot was blocked by the user"))
		}
		return nil
	})
	if err := chat.say(ctx, core.Inbound{ChatID: "poison", ID: "p1", Text: "hello"}); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := chat.say(ctx, core.Inbound{ChatID: fmt.Sprintf("ok-%d", i), ID: fmt.Sprint(i), Text: "hello"}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "healthy chats served", func() bool { return len(chat.sent()) == 5 })

	// The admin API lists the dead letter, with its error.
	var dead []engine.MessageView
	eventually(t, "dead letter listed", func() bool {
		dead = nil
		status, body := adminGet(t, e.base+"/admin/deadletters", adminToken)
		if status != http.StatusOK {
			t.Fatalf("admin list: %d %s", status, body)
		}
		if err := json.Unmarshal(body, &dead); err != nil {
			t.Fatal(err)
		}
		return len(dead) == 1
	})
	if dead[0].Chat != "chat:poison" || dead[0].Direction != "out" || !strings.Contains(dead[0].LastError, "blocked") || dead[0].Attempts != 1 {
		t.Fatalf("dead letter = %+v", dead[0])
	}
	if status, _ := adminGet(t, e.base+"/admin/deadletters", "wrong-token"); status != http.StatusUnauthorized {
		t.Fatalf("admin API with a wrong token: %d, want 401", status)
	}
	if status, _ := adminGet(t, fmt.Sprintf("%s/admin/deadletters/%d", e.base, dead[0].ID), adminToken); status != http.StatusOK {
		t.Fatalf("admin show: %d", status)
	}

	// The cause is fixed (the user unblocked the bot); replay beside the
	// running gateway, as the CLI does.
	chat.setFail(nil)
	admin, err := store.OpenSQLiteShared(ctx, filepath.Join(e.dataDir, engine.StoreFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.Replay(ctx, dead[0].ID); err != nil {
		t.Fatal(err)
	}
	admin.Close()
	eventually(t, "replayed message delivered", func() bool {
		for _, m := range chat.sent() {
			if m.ChatID == "poison" {
				return true
			}
		}
		return false
	})
	status, body := adminGet(t, e.base+"/admin/deadletters", adminToken)
	if status != http.StatusOK || strings.TrimSpace(string(body)) != "[]" {
		t.Fatalf("dead letters after replay: %d %s", status, body)
	}
}

func adminGet(t *testing.T, url, token string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}
