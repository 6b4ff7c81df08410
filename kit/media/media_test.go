package media

import (
	"testing"
	"time"
)

func TestStandIn(t *testing.T) {
	tests := []struct {
		name string
		it   Item
		want string
	}{
		{name: "photo", it: Item{Kind: Photo}, want: "[photo]"},
		{name: "named photo with its address", it: Item{Kind: Photo, Name: "cat.png", URL: "https://cdn.example/cat.png"}, want: "[photo: cat.png, https://cdn.example/cat.png]"},
		{name: "file with its address", it: Item{Kind: File, Name: "price.pdf", URL: "https://cdn.example/p.pdf"}, want: "[file: price.pdf, https://cdn.example/p.pdf]"},
		{name: "video", it: Item{Kind: Video, Duration: 75 * time.Second}, want: "[video, 1:15]"},
		{name: "round video", it: Item{Kind: VideoNote, Duration: 9 * time.Second}, want: "[round video message, 0:09]"},
		{name: "gif", it: Item{Kind: GIF}, want: "[GIF]"},
		{name: "voice", it: Item{Kind: Voice, Duration: 12 * time.Second}, want: "[voice message, 0:12]"},
		{name: "audio with title", it: Item{Kind: Audio, Name: "Queen – Bohemian Rhapsody"}, want: "[audio: Queen – Bohemian Rhapsody]"},
		{name: "audio without", it: Item{Kind: Audio}, want: "[audio]"},
		{name: "file", it: Item{Kind: File, Name: "price.pdf"}, want: "[file: price.pdf]"},
		{name: "file without a name", it: Item{Kind: File}, want: "[file]"},
		{name: "sticker", it: Item{Kind: Sticker, Detail: "😀"}, want: "[sticker 😀]"},
		{name: "bare sticker", it: Item{Kind: Sticker}, want: "[sticker]"},
		{name: "contact", it: Item{Kind: Contact, Name: "Ann Lee", Detail: "+998901234567"}, want: "[shared contact: Ann Lee +998901234567]"},
		{name: "place", it: Item{Kind: Place, Name: "Chorsu", Detail: "Tashkent"}, want: "[place: Chorsu, Tashkent]"},
		{name: "location", it: Item{Kind: Location, Lat: 41.311081, Lon: 69.240562}, want: "[location: 41.31108, 69.24056]"},
		{name: "poll", it: Item{Kind: Poll, Name: "Which colour?"}, want: "[poll: Which colour?]"},
		{name: "dice", it: Item{Kind: Dice, Detail: "🎲", Value: 4}, want: "[dice 🎲: 4]"},
		{name: "unknown", it: Item{Name: "x.bin"}, want: "[attachment: x.bin]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := StandIn(tt.it); got != tt.want {
				t.Fatalf("StandIn = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNeedsText(t *testing.T) {
	for _, k := range []Kind{Photo, Video, VideoNote, GIF, Voice, Audio, File} {
		if !k.NeedsText() {
			t.Errorf("kind %d: its content is lost without text", k)
		}
	}
	for _, k := range []Kind{Sticker, Contact, Location, Place, Poll, Dice} {
		if k.NeedsText() {
			t.Errorf("kind %d carries its meaning in the stand-in", k)
		}
	}
}

func TestWithText(t *testing.T) {
	if got := WithText("  is it in stock? ", "[photo]", "", "[file: a.pdf]"); got != "[photo] [file: a.pdf] is it in stock?" {
		t.Fatalf("WithText = %q", got)
	}
	if got := WithText("", "[photo]"); got != "[photo]" {
		t.Fatalf("WithText without text = %q", got)
	}
}

func TestFromMIME(t *testing.T) {
	for ct, want := range map[string]Kind{
		"image/png": Photo, "image/gif": GIF, "video/mp4": Video, "audio/ogg; codecs=opus": Audio,
		"application/pdf": File, "": File, "not a type": File,
	} {
		if got := FromMIME(ct); got != want {
			t.Errorf("FromMIME(%q) = %d, want %d", ct, got, want)
		}
	}
}
