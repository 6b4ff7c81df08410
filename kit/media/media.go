// Package media is the one vocabulary of stand-ins for what a user sends
// that the assistant cannot take: Selarti takes text only, so a photo, a
// voice message or a file reaches it as a readable bracketed stand-in
// ("[photo]", "[voice message, 0:12]", "[file: price.pdf]"), and nothing
// a user sends vanishes silently. Every adapter uses these words, so the
// assistant (and the operator reading the dialog) sees the same stand-in
// whatever the network.
//
// Stand-ins are in English: they are read by the assistant's prompt and
// by operators in Selarti's panel, not by the user.
package media

import (
	"fmt"
	"mime"
	"strings"
	"time"
)

// Kind is a kind of media.
type Kind int

// Kinds of media.
const (
	Unknown   Kind = iota
	Photo          // a picture
	Video          // a video
	VideoNote      // a round video message (Telegram)
	GIF            // an animation
	Voice          // a voice message
	Audio          // a music or audio file
	File           // any other file
	Sticker        // a sticker
	Contact        // a shared contact card
	Location       // a point on a map
	Place          // a named place (a venue)
	Poll           // a poll
	Dice           // an animated dice throw (Telegram)
)

// Item is one piece of media, described by what the network tells.
// Fields that do not apply to its Kind are ignored; every field is
// optional.
type Item struct {
	Kind Kind
	// Duration of a video, round video, voice message or audio.
	Duration time.Duration
	// Name is a file's name, an audio's "performer – title", a contact's
	// name, a place's title or a poll's question.
	Name string
	// Detail is a sticker's or dice's emoji, a contact's phone number, or
	// a place's address.
	Detail string
	// Lat and Lon are a location's coordinates.
	Lat, Lon float64
	// Value is a dice throw's result.
	Value int
	// URL is where the assistant (or an operator) can open it, for
	// networks that give one (Discord's and Slack's attachments).
	URL string
}

// NeedsText reports whether the item's content is lost without a caption
// (a photo, a voice message, a file): the adapter then asks the user to
// type instead (its media_reply). A sticker, a location or a contact
// carries its meaning in the stand-in.
func (k Kind) NeedsText() bool {
	switch k {
	case Photo, Video, VideoNote, GIF, Voice, Audio, File, Unknown:
		return true
	}
	return false
}

// StandIn returns the bracketed text that stands for it, with its URL
// when it has one: "[file: price.pdf, https://…]".
func StandIn(it Item) string {
	s := standIn(it)
	if it.URL != "" {
		s = strings.TrimSuffix(s, "]") + ", " + it.URL + "]"
	}
	return s
}

func standIn(it Item) string {
	switch it.Kind {
	case Photo:
		return labelled("photo", it.Name)
	case Video:
		return "[video, " + clock(it.Duration) + "]"
	case VideoNote:
		return "[round video message, " + clock(it.Duration) + "]"
	case GIF:
		return labelled("GIF", it.Name)
	case Voice:
		return "[voice message, " + clock(it.Duration) + "]"
	case Audio:
		return labelled("audio", it.Name)
	case File:
		return labelled("file", it.Name)
	case Sticker:
		return spaced("sticker", it.Detail)
	case Contact:
		return "[shared contact: " + strings.TrimSpace(it.Name+" "+it.Detail) + "]"
	case Place:
		return "[place: " + it.Name + ", " + it.Detail + "]"
	case Location:
		return fmt.Sprintf("[location: %.5f, %.5f]", it.Lat, it.Lon)
	case Poll:
		return "[poll: " + it.Name + "]"
	case Dice:
		return fmt.Sprintf("[dice %s: %d]", it.Detail, it.Value)
	}
	return labelled("attachment", it.Name)
}

// WithText joins stand-ins and the user's own text (a caption) into one
// message: "[photo] is this in stock?".
func WithText(text string, standIns ...string) string {
	parts := make([]string, 0, len(standIns)+1)
	for _, s := range standIns {
		if s != "" {
			parts = append(parts, s)
		}
	}
	if t := strings.TrimSpace(text); t != "" {
		parts = append(parts, t)
	}
	return strings.Join(parts, " ")
}

// FromMIME tells the kind of a file from its media type, for networks
// that send every attachment as a file with a content type (Discord,
// Slack): image/gif is a GIF, other images photos, video/* videos,
// audio/* audio, anything else (or an unparsable type) a file.
func FromMIME(contentType string) Kind {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return File
	}
	switch {
	case mt == "image/gif":
		return GIF
	case strings.HasPrefix(mt, "image/"):
		return Photo
	case strings.HasPrefix(mt, "video/"):
		return Video
	case strings.HasPrefix(mt, "audio/"):
		return Audio
	}
	return File
}

// clock formats a duration as m:ss.
func clock(d time.Duration) string {
	sec := int(d / time.Second)
	return fmt.Sprintf("%d:%02d", sec/60, sec%60)
}

func labelled(word, name string) string {
	if name = strings.TrimSpace(name); name == "" {
		return "[" + word + "]"
	}
	return "[" + word + ": " + name + "]"
}

func spaced(word, detail string) string {
	if detail == "" {
		return "[" + word + "]"
	}
	return "[" + word + " " + detail + "]"
}
