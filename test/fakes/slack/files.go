package slack

import (
	"net/http"
	"net/url"
	"strings"
)

// serveFile serves a shared file's url_private or url_private_download,
// /files-pri/<team>-<file>/[download/]<name>, as files.slack.com does: to
// a request with the team's bot token in Authorization: Bearer; without
// it, a redirect to the workspace's sign-in page with redir set to the
// file's path (which slack-go's GetFile detects).
func (s *Server) serveFile(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, "/files-pri/")
	key, name, _ := strings.Cut(rest, "/")
	name = strings.TrimPrefix(name, "download/")
	teamID, fileID, _ := strings.Cut(key, "-")
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")

	s.mu.Lock()
	var f *storedFile
	var authorized bool
	for _, t := range s.teams {
		if t.id != teamID {
			continue
		}
		f = t.files[fileID]
		ref, ok := s.tokens[tok]
		authorized = ok && ref.team == t && ref.kind == TokenBot && !t.botRevoked
	}
	s.mu.Unlock()

	if !authorized {
		http.Redirect(w, r, "/?redir="+url.QueryEscape(r.URL.Path), http.StatusFound)
		return
	}
	if f == nil || f.file.Name != name {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", f.file.Mimetype)
	if strings.Contains(rest, "/download/") {
		w.Header().Set("Content-Disposition", `attachment; filename="`+f.file.Name+`"`)
	}
	_, _ = w.Write(f.content)
}
