package telegram

import (
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode"
)

// MaxMessageLength is Telegram's limit on a message's text, in UTF-16 code
// units after entity parsing.
const MaxMessageLength = 4096

// chatActions are the actions sendChatAction accepts.
var chatActions = map[string]bool{
	"typing": true, "upload_photo": true, "record_video": true, "upload_video": true,
	"record_voice": true, "upload_voice": true, "upload_document": true, "choose_sticker": true,
	"find_location": true, "record_video_note": true, "upload_video_note": true,
}

// targetLocked resolves chat_id to a chat the bot may write to.
func (b *Bot) targetLocked(p params) (*chatState, error) {
	raw := p.str("chat_id")
	if raw == "" {
		return nil, errBadRequest("chat_id is empty")
	}
	var cs *chatState
	if name, ok := strings.CutPrefix(raw, "@"); ok {
		for _, c := range b.chats {
			if strings.EqualFold(c.chat.Username, name) {
				cs = c
			}
		}
	} else {
		id, err := p.int("chat_id")
		if err == nil {
			cs = b.chats[id]
		}
	}
	if cs == nil {
		return nil, errBadRequest("chat not found")
	}
	if cs.blocked {
		if cs.chat.Type == ChatPrivate {
			return nil, apiError{code: http.StatusForbidden, desc: "Forbidden: bot was blocked by the user"}
		}
		return nil, apiError{code: http.StatusForbidden, desc: "Forbidden: bot was kicked from the " + cs.chat.Type + " chat"}
	}
	return cs, nil
}

func (b *Bot) sendMessage(p params) (any, string, error) {
	text := p.str("text")
	mode := p.str("parse_mode")
	var plain string
	var ents []MessageEntity
	switch strings.ToLower(mode) {
	case "":
		plain = strings.TrimFunc(text, unicode.IsSpace)
	case "html":
		var err error
		plain, ents, err = ParseHTML(text)
		if err != nil {
			return nil, "", errBadRequest("can't parse entities: " + err.Error())
		}
	default:
		// Markdown and MarkdownV2 exist in Telegram; the fake does not
		// implement them, and says so rather than guess.
		return nil, "", errBadRequest("unsupported parse_mode")
	}
	if plain == "" {
		return nil, "", errBadRequest("message text is empty")
	}
	if utf16Len(plain) > MaxMessageLength {
		return nil, "", errBadRequest("message is too long")
	}
	var reply ReplyParameters
	if err := p.object("reply_parameters", &reply); err != nil {
		return nil, "", err
	}
	if reply.MessageID == 0 {
		legacy, err := p.int("reply_to_message_id")
		if err != nil {
			return nil, "", err
		}
		reply.MessageID = legacy
		reply.AllowSendingWithoutReply = reply.AllowSendingWithoutReply || p.bool("allow_sending_without_reply")
	}
	var preview LinkPreviewOptions
	if err := p.object("link_preview_options", &preview); err != nil {
		return nil, "", err
	}
	thread, err := p.int("message_thread_id")
	if err != nil {
		return nil, "", err
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	cs, err := b.targetLocked(p)
	if err != nil {
		return nil, "", err
	}
	if reply.MessageID != 0 && (reply.MessageID < 1 || reply.MessageID >= cs.nextMsg) {
		if !reply.AllowSendingWithoutReply {
			return nil, "", errBadRequest("message to be replied not found")
		}
		reply.MessageID = 0
	}
	msg := Message{
		MessageID:       cs.nextMsg,
		MessageThreadID: thread,
		From:            &b.user,
		Date:            time.Now().Unix(),
		Chat:            cs.chat,
		Text:            plain,
		Entities:        ents,
	}
	if reply.MessageID != 0 {
		msg.ReplyToMessage = &Message{MessageID: reply.MessageID, Chat: cs.chat, Date: msg.Date}
	}
	cs.nextMsg++
	// Recorded by serveMethod together with the call's status, so that a
	// test that sees the message also sees the call answered.
	return recorded{result: msg, sent: &SentMessage{
		MessageID:           msg.MessageID,
		ChatID:              cs.chat.ID,
		Text:                text,
		ParseMode:           mode,
		Plain:               plain,
		Entities:            ents,
		ReplyTo:             reply.MessageID,
		ThreadID:            thread,
		LinkPreviewDisabled: preview.IsDisabled || p.bool("disable_web_page_preview"),
		At:                  time.Now(),
	}}, "", nil
}

// recorded is a result with a record to keep once the call is answered.
type recorded struct {
	result any
	sent   *SentMessage
	action *ChatAction
}

func (b *Bot) sendChatAction(p params) (any, string, error) {
	action := p.str("action")
	b.mu.Lock()
	defer b.mu.Unlock()
	cs, err := b.targetLocked(p)
	if err != nil {
		return nil, "", err
	}
	if !chatActions[action] {
		return nil, "", errBadRequest("wrong parameter action in request")
	}
	return recorded{result: true, action: &ChatAction{ChatID: cs.chat.ID, Action: action, At: time.Now()}}, "", nil
}

// AddFile stores a downloadable file and returns it as getFile would.
func (b *Bot) AddFile(name string, content []byte) File {
	b.mu.Lock()
	defer b.mu.Unlock()
	var f File
	b.fillFileLocked(&f.FileID, &f.FileUniqueID, "documents", "_"+name)
	e := b.files[f.FileID]
	e.content = content
	e.file.FileSize = int64(len(content))
	return e.file
}

// fillFileLocked registers a file for a media object whose file id is
// empty, with a small placeholder content.
func (b *Bot) fillFileLocked(id, uniqueID *string, dir, ext string) {
	if *id != "" {
		return
	}
	b.nextFile++
	n := b.nextFile
	*id = fmt.Sprintf("BQACAgIAAxkBAAI%08dfake%d", n, b.user.ID)
	*uniqueID = fmt.Sprintf("AgAD%06d", n)
	content := []byte(fmt.Sprintf("fake file %d", n))
	b.files[*id] = &fileEntry{
		file:    File{FileID: *id, FileUniqueID: *uniqueID, FileSize: int64(len(content)), FilePath: fmt.Sprintf("%s/file_%d%s", dir, n, ext)},
		content: content,
	}
}

func (b *Bot) getFile(p params) (any, string, error) {
	id := p.str("file_id")
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.files[id]
	if e == nil {
		return nil, "", errBadRequest("invalid file_id")
	}
	return e.file, "", nil
}

// serveFile answers a download from /file/bot<token>/<file_path>.
func (b *Bot) serveFile(w http.ResponseWriter, path string) {
	b.mu.Lock()
	var content []byte
	found := false
	for _, e := range b.files {
		if e.file.FilePath == path {
			content, found = e.content, true
		}
	}
	b.mu.Unlock()
	if !found {
		writeError(w, apiError{code: http.StatusNotFound, desc: "Not Found"})
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(content)
}
