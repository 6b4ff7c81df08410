package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// backend is a replica stand-in: it answers its name and the Host it was
// asked for, and echoes WebSocket messages prefixed with its name.
func backend(t *testing.T, name string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ws" {
			c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
			if err != nil {
				return
			}
			defer c.CloseNow()
			for {
				typ, msg, err := c.Read(r.Context())
				if err != nil {
					return
				}
				if err := c.Write(r.Context(), typ, append([]byte(name+":"), msg...)); err != nil {
					return
				}
			}
		}
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %s %s", name, r.Host, r.URL.RequestURI(), body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func startTestBalancer(t *testing.T, backends ...string) *balancer {
	t.Helper()
	addr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	lb, err := startBalancer(addr, backends)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lb.Close() })
	return lb
}

// Requests go to the replicas in turn, with their path, query, body and
// the Host the client asked for.
func TestBalancerRoundRobin(t *testing.T) {
	a, b, c := backend(t, "a"), backend(t, "b"), backend(t, "c")
	lb := startTestBalancer(t, a.URL, b.URL, c.URL)
	host := strings.TrimPrefix(lb.URL(), "http://")
	var got []string
	for i := range 7 {
		resp, err := http.Post(lb.URL()+"/webhooks/selarti/s?x=1", "text/plain", strings.NewReader(fmt.Sprint(i)))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		name, rest, _ := strings.Cut(string(body), " ")
		if want := host + " /webhooks/selarti/s?x=1 " + fmt.Sprint(i); rest != want {
			t.Errorf("request %d: backend saw %q, want %q", i, rest, want)
		}
		got = append(got, name)
	}
	if want := []string{"a", "b", "c", "a", "b", "c", "a"}; !slices.Equal(got, want) {
		t.Errorf("backends %v, want %v", got, want)
	}
	if p := lb.Picks(); !slices.Equal(p, []int64{3, 2, 2}) {
		t.Errorf("picks %v, want [3 2 2]", p)
	}
}

// A WebSocket goes through to one replica for its whole life; the next
// one goes to the next replica.
func TestBalancerWebSocket(t *testing.T) {
	a, b := backend(t, "a"), backend(t, "b")
	lb := startTestBalancer(t, a.URL, b.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	url := strings.Replace(lb.URL(), "http", "ws", 1) + "/ws"
	for _, want := range []string{"a", "b", "a"} {
		c, _, err := websocket.Dial(ctx, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			msg := fmt.Sprintf("hello %d", i)
			if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
				t.Fatal(err)
			}
			_, got, err := c.Read(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != want+":"+msg {
				t.Errorf("got %q, want %q", got, want+":"+msg)
			}
		}
		c.Close(websocket.StatusNormalClosure, "")
	}
}

// A replica that does not answer costs its requests a 502, counted; the
// balancer does not retry them elsewhere (the clients do, as Selarti and
// Telegram retry webhooks).
func TestBalancerDeadBackend(t *testing.T) {
	a := backend(t, "a")
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	lb := startTestBalancer(t, a.URL, dead.URL)
	var codes []int
	for range 4 {
		resp, err := http.Get(lb.URL() + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		codes = append(codes, resp.StatusCode)
	}
	if want := []int{200, 502, 200, 502}; !slices.Equal(codes, want) {
		t.Errorf("status codes %v, want %v", codes, want)
	}
	if lb.Errors() != 2 {
		t.Errorf("errors %d, want 2", lb.Errors())
	}
	if _, err := startBalancer("127.0.0.1:0", []string{"127.0.0.1:80"}); err == nil {
		t.Error("a backend without http:// accepted")
	}
}
