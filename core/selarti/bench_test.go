package selarti

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"
)

// simWebhook builds a webhook body the way the simulator in
// test/fakes/selarti does (every documented field, json.Marshal of a map,
// so keys in sorted order), with the flags as strings or as booleans.
func simWebhook(tb testing.TB, typ, text string, asStrings bool) []byte {
	tb.Helper()
	flag := func(v bool) any {
		if !asStrings {
			return v
		}
		if v {
			return "yes"
		}
		return "no"
	}
	const root = "http://127.0.0.1:38211"
	b, err := json.Marshal(map[string]any{
		FieldChannelID:      "1721129985149x478019552540622851",
		FieldClose:          flag(false),
		FieldCompanyID:      "1721129985149x478019552540622852",
		FieldContacts:       "+49 151 2345678, ann@example.com",
		FieldExternalChatID: "webchat:Zr4xq0Pbm2Vw8sLk1TnYdA",
		FieldGetContact:     flag(true),
		FieldInterest:       flag(true),
		FieldIsBot:          flag(false),
		FieldManagerID:      "1721129985149x478019552540622853",
		FieldMessageID:      "1721129986021x812374609123874561",
		FieldMessageText:    text,
		FieldMessageType:    typ,
		FieldOperator:       flag(false),
		FieldPanelURL:       root + "/panel/dialog/1721129985149x478019552540622854",
		FieldShareURL:       root + "/share/1721129985149x478019552540622854",
		FieldSuccess:        flag(false),
		FieldTaskID:         "1721129985149x478019552540622850",
		FieldThreadID:       "1721129985149x478019552540622854",
		FieldTitle:          "Анна Ли",
		FieldWhType:         "new_message",
	})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// benchBotText is the simulator's Russian price answer: Markdown,
// newlines (escaped in JSON) and non-ASCII text.
const benchBotText = "**Наши цены**\n\n" +
	"- Умная лампа: **2 900 ₽**\n" +
	"- Беспроводная колонка: **5 900 ₽**\n" +
	"- Фитнес-браслет: **4 500 ₽**\n\n" +
	"Весь каталог: [shop.example.com](https://shop.example.com/catalogue)."

func BenchmarkParseWebhook(b *testing.B) {
	for _, bc := range []struct {
		name string
		body []byte
	}{
		// An assistant's answer, flags as "yes"/"no" strings.
		{"bot", simWebhook(b, TypeBot, benchBotText, true)},
		// The user's own message echoed back, flags as JSON booleans.
		{"user_echo", simWebhook(b, TypeUser, "How much is delivery to Berlin?", false)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			if _, err := ParseWebhook(bc.body); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(bc.body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ParseWebhook(bc.body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchMsg is a typical webchat user message.
var benchMsg = Message{
	TaskID:   "1721129985149x478019552540622850",
	ChatID:   "webchat:Zr4xq0Pbm2Vw8sLk1TnYdA",
	Text:     "How much is delivery to Berlin?",
	Name:     "Ann Lee",
	Username: "ann",
}

// benchServer is a minimal Selarti on loopback: a token, then 200 for
// every send after latency. It counts the connections opened to it. Its own allocations count in the benchmark too (same
// process), so they are kept small.
func benchServer(b *testing.B, latency time.Duration) (*httptest.Server, *atomic.Int64) {
	b.Helper()
	var conns atomic.Int64
	w := DefaultWire()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/1.1"+w.AuthPath, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"success","response":{"token":"tok-1","user_id":"u1"}}`)
	})
	mux.HandleFunc("POST /api/1.1"+w.SendPath, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if latency > 0 {
			time.Sleep(latency)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"success","response":{}}`)
	})
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	b.Cleanup(srv.Close)
	return srv, &conns
}

func BenchmarkSend(b *testing.B) {
	// Each sub-benchmark reports the connections it opened per Send.
	newClient := func(b *testing.B, latency time.Duration) *Client {
		srv, conns := benchServer(b, latency)
		c, err := New(Config{BaseURL: srv.URL + "/api/1.1", APIKey: testKey})
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Authenticate(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { b.ReportMetric(float64(conns.Load())/float64(b.N), "conns/op") })
		return c
	}
	b.Run("serial", func(b *testing.B) {
		c := newClient(b, 0)
		b.ReportAllocs()
		for b.Loop() {
			if err := c.Send(context.Background(), benchMsg); err != nil {
				b.Fatal(err)
			}
		}
	})
	// 16 senders at once, as the gateway's delivery workers, against a
	// server that takes 1ms as a remote one would, so that all 16 are
	// in flight together.
	b.Run("parallel16", func(b *testing.B) {
		c := newClient(b, time.Millisecond)
		b.ReportAllocs()
		b.SetParallelism((16 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := c.Send(context.Background(), benchMsg); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

func BenchmarkSendEncode(b *testing.B) {
	c, err := New(Config{BaseURL: "http://127.0.0.1:1/api/1.1", APIKey: testKey})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.encode(benchMsg); err != nil {
			b.Fatal(err)
		}
	}
}

// encodeOptions make jsontext's Encoder write what a json.Encoder with
// SetEscapeHTML(false) writes (U+2028 and U+2029 escaped), but for invalid
// UTF-8: see TestJSONTextEncoderInvalidUTF8.
var encodeOptions = []jsontext.Options{
	jsontext.EscapeForJS(true),
	jsontext.AllowInvalidUTF8(true),
	jsontext.AllowDuplicateNames(true), // a Client refuses colliding names
}

// encodeJSONText builds the body of a send as Client.encode does, with
// jsontext's Encoder in place of appendObject, in its cheapest use: the
// Encoder and its buffer out are reused (Send would need a pool of them),
// and the body is copied out of the buffer. BenchmarkSendEncodeJSONText
// measures it against BenchmarkSendEncode for docs/benchmarks.md.
func encodeJSONText(enc *jsontext.Encoder, out *bytes.Buffer, w Wire, m Message) ([]byte, error) {
	var buf [7]member
	fields := append(buf[:0], member{w.TaskIDField, m.TaskID}, member{w.ChatIDField, m.ChatID}, member{w.TextField, m.Text})
	for _, f := range [...]member{{w.NameField, m.Name}, {w.UsernameField, m.Username}, {w.PhoneField, m.Phone}, {w.IdempotencyKeyField, m.IdempotencyKey}} {
		if f.key != "" && f.value != "" {
			fields = append(fields, f)
		}
	}
	slices.SortFunc(fields, func(a, b member) int { return strings.Compare(a.key, b.key) })
	out.Reset()
	enc.Reset(out, encodeOptions...)
	if err := enc.WriteToken(jsontext.BeginObject); err != nil {
		return nil, err
	}
	for _, f := range fields {
		if err := enc.WriteToken(jsontext.String(f.key)); err != nil {
			return nil, err
		}
		if err := enc.WriteToken(jsontext.String(f.value)); err != nil {
			return nil, err
		}
	}
	if err := enc.WriteToken(jsontext.EndObject); err != nil {
		return nil, err
	}
	return bytes.Clone(out.Bytes()), nil
}

func BenchmarkSendEncodeJSONText(b *testing.B) {
	c, err := New(Config{BaseURL: "http://127.0.0.1:1/api/1.1", APIKey: testKey})
	if err != nil {
		b.Fatal(err)
	}
	var (
		enc jsontext.Encoder
		out bytes.Buffer
	)
	want, _ := c.encode(benchMsg)
	if got, err := encodeJSONText(&enc, &out, c.wire, benchMsg); err != nil || !bytes.Equal(got, want) {
		b.Fatalf("jsontext: %q, %v; appendObject: %q", got, err, want)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := encodeJSONText(&enc, &out, c.wire, benchMsg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseWebhookDeep parses hostile bodies: an unknown field nested
// 9,999 and 10,000 deep (the most ParseWebhook accepts; jsontext reads
// that one a second time, see object.reread). stack-KiB is how much the
// parsing goroutine's stack grew for one call.
func BenchmarkParseWebhookDeep(b *testing.B) {
	for _, depth := range []int{9999, 10000} {
		body := []byte(`{"x":` + strings.Repeat("[", depth) + strings.Repeat("]", depth) +
			`,"external_chat_id":"c","message_id":"m","message_type":"bot","message_text":"x"}`)
		b.Run(strconv.Itoa(depth), func(b *testing.B) {
			if _, err := ParseWebhook(body); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ParseWebhook(body); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(stackGrowth(func() { _, _ = ParseWebhook(body) }))/1024, "stack-KiB")
		})
	}
}

// stackGrowth returns how many bytes of goroutine stack f grows, run in a
// new goroutine.
func stackGrowth(f func()) int64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	done, hold := make(chan struct{}), make(chan struct{})
	go func() {
		f()
		close(done)
		<-hold
	}()
	<-done
	runtime.ReadMemStats(&after)
	close(hold)
	return int64(after.StackInuse) - int64(before.StackInuse)
}
