package engine

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/core/store"
)

// MessageView is a queued message as shown to operators, by the admin
// endpoint and by `switchboard deadletters`: the payload decoded, the
// store's bookkeeping alongside.
type MessageView struct {
	ID               int64     `json:"id"`
	Direction        string    `json:"direction"` // "in": user to Selarti; "out": Selarti to user
	Chat             string    `json:"chat"`
	State            string    `json:"state"`
	Text             string    `json:"text"`
	From             string    `json:"from,omitempty"`               // out: bot or operator
	SelartiMessageID string    `json:"selarti_message_id,omitempty"` // out
	UserName         string    `json:"user_name,omitempty"`          // in
	Attempts         int       `json:"attempts"`
	CreatedAt        time.Time `json:"created_at"`
	NextAttemptAt    time.Time `json:"next_attempt_at,omitzero"`
	LastError        string    `json:"last_error,omitempty"`
}

// ViewMessage decodes a stored message for display. A payload that does
// not decode is shown as such rather than hidden. The chat id, and its
// native id in the last error, are shown as p shows them: shortened for
// an instance whose chat ids are secrets (the webchat's); the message's
// ID is what an operator acts on.
func ViewMessage(m store.Message, p ChatPrivacy) MessageView {
	v := MessageView{
		ID: m.ID, Direction: directionLabel(m.Dir), Chat: p.Show(m.Chat), State: string(m.State),
		Attempts: m.Attempts, CreatedAt: m.CreatedAt, LastError: p.Scrub(m.Chat, m.LastError),
	}
	if m.State == store.Pending {
		v.NextAttemptAt = m.NextAt
	}
	switch m.Dir {
	case store.ToSelarti:
		var rec inboundRecord
		if err := json.Unmarshal(m.Payload, &rec); err != nil {
			v.Text = "(undecodable payload: " + err.Error() + ")"
			break
		}
		v.Text, v.UserName = rec.Text, rec.Name
	case store.ToUser:
		var rec outboundRecord
		if err := json.Unmarshal(m.Payload, &rec); err != nil {
			v.Text = "(undecodable payload: " + err.Error() + ")"
			break
		}
		v.Text, v.From, v.SelartiMessageID = rec.Text, string(rec.From), rec.MessageID
	}
	return v
}

// AdminPath is the prefix of the read-only admin API.
const AdminPath = "/admin"

// maxAdminList bounds one listing.
const maxAdminList = 1000

// adminAPI is the read-only admin endpoint: dead letters and outbox
// figures. Changing things (replay, drop) is the CLI's job, run by someone
// with access to the data directory.
type adminAPI struct {
	token   core.Secret
	store   func() store.Store
	privacy ChatPrivacy
}

func (a *adminAPI) mount(e *echo.Echo) {
	g := e.Group(AdminPath, a.auth)
	g.GET("/deadletters", a.list)
	g.GET("/deadletters/:id", a.show)
	g.GET("/outbox", a.outbox)
}

// auth checks "Authorization: Bearer <admin.token>" in constant time. With
// no token configured, the admin API does not exist (404), so a gateway is
// never open by default.
func (a *adminAPI) auth(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if a.token.IsZero() {
			return echo.NewHTTPError(http.StatusNotFound, "admin api disabled: set admin.token")
		}
		got, ok := strings.CutPrefix(c.Request().Header.Get("Authorization"), "Bearer ")
		if !ok || !a.token.Equal(got) {
			c.Response().Header().Set("WWW-Authenticate", `Bearer realm="switchboard-admin"`)
			return echo.NewHTTPError(http.StatusUnauthorized, "missing or wrong admin token")
		}
		return next(c)
	}
}

func (a *adminAPI) list(c echo.Context) error {
	limit := 100
	if s := c.QueryParam("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxAdminList {
			return echo.NewHTTPError(http.StatusBadRequest, "limit must be 1 to 1000")
		}
		limit = n
	}
	dead, err := a.store().DeadLetters(c.Request().Context(), limit)
	if err != nil {
		return echo.NewHTTPError(http.StatusServiceUnavailable, "store: "+err.Error())
	}
	out := make([]MessageView, 0, len(dead))
	for _, m := range dead {
		out = append(out, ViewMessage(m, a.privacy))
	}
	return c.JSON(http.StatusOK, out)
}

func (a *adminAPI) show(c echo.Context) error {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "id must be a number")
	}
	m, err := a.store().Get(c.Request().Context(), id)
	switch {
	case errors.Is(err, store.ErrNotFound) || (err == nil && m.State != store.Dead):
		// Only dead letters: the endpoint is not a way to read every
		// conversation the store keeps.
		return echo.NewHTTPError(http.StatusNotFound, "no such dead letter")
	case err != nil:
		return echo.NewHTTPError(http.StatusServiceUnavailable, "store: "+err.Error())
	}
	return c.JSON(http.StatusOK, ViewMessage(m, a.privacy))
}

func (a *adminAPI) outbox(c echo.Context) error {
	out := map[string]outStat{}
	for _, dir := range store.Directions {
		s, err := a.store().Stats(c.Request().Context(), dir)
		if err != nil {
			return echo.NewHTTPError(http.StatusServiceUnavailable, "store: "+err.Error())
		}
		out[directionLabel(dir)] = viewStats(s, time.Now())
	}
	return c.JSON(http.StatusOK, out)
}
