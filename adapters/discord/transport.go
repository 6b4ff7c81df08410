package discord

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/bwmarrin/discordgo"

	"github.com/switchboard-gw/switchboard/core"
)

// rewriter sends discordgo's REST requests to the instance's api_url.
//
// discordgo builds every URL from package variables (EndpointAPI and the
// rest, "https://discord.com/api/v9/..."), shared by the whole process.
// Reassigning them per instance would send two instances to whichever
// host was set last, so they are left alone and each instance's HTTP
// client rewrites the prefix instead: requests under EndpointAPI go to
// api_url with the same path below it. This is also how the API version
// becomes the one api_url names (v10 by default) rather than discordgo's.
type rewriter struct {
	from string   // discordgo.EndpointAPI
	to   *url.URL // api_url
	next http.RoundTripper
}

func newRewriter(apiURL string, next http.RoundTripper) (*rewriter, error) {
	to, err := url.Parse(strings.TrimRight(apiURL, "/") + "/")
	if err != nil {
		return nil, fmt.Errorf("%q is not a URL", core.RedactURL(apiURL))
	}
	return &rewriter{from: discordgo.EndpointAPI, to: to, next: next}, nil
}

// RoundTrip implements http.RoundTripper.
func (rw *rewriter) RoundTrip(req *http.Request) (*http.Response, error) {
	rest, ok := strings.CutPrefix(req.URL.String(), rw.from)
	if !ok {
		return rw.next.RoundTrip(req)
	}
	u, err := rw.to.Parse(rest)
	if err != nil {
		return nil, err
	}
	out := req.Clone(req.Context())
	out.URL = u
	out.Host = u.Host
	return rw.next.RoundTrip(out)
}
