package richtext

import (
	"fmt"
	"strings"
	"testing"
)

// reply is a typical answer of the assistant, about 500 characters.
const reply = `**Our prices** for this week:

- Smart lamp: **$29** (was ~~$39~~)
- Wireless speaker: **$59**, see [the speaker page](https://shop.example.com/speaker?ref=chat)
- Цена доставки: _бесплатно_ от $50 😀

To order, reply with the item's name, or run ` + "`order lamp`" + `. For the API:

` + "```python\nimport shop\nshop.order(\"lamp\", qty=2)\n```" + `

> Offer valid until Sunday. Oʻzbekiston: yetkazib berish bepul!
`

// replyOf is about n characters of replies.
func replyOf(n int) string {
	return strings.Repeat(reply+"\n", n/len([]rune(reply))+1)
}

// limits are what each network's adapter would split with.
var benchLimits = map[string]Limit{
	"telegram": TelegramLimit,
	"discord":  DiscordLimit,
	"slack":    {Max: 4000, Measure: Runes, Rendered: true},
	"plain":    {Max: 1000, Measure: UTF16, Rendered: true},
	"html":     {Max: 8000, Measure: Bytes, Rendered: true},
}

// Benchmarks: go test -run '^$' -bench . -benchmem ./kit/richtext/
//
// On a 2-core Intel Xeon VM (shared), Go 1.26:
//
//	BenchmarkParseSplit/*/500      40-46 µs, 49 kB, ~240 allocs (one part; parsing is most of it)
//	BenchmarkParseSplit/*/6000     0.38 ms (telegram) to 0.50 ms (discord), 0.45-0.57 MB
//	BenchmarkSplit40k/telegram     0.47 ms (8 parts)
//	BenchmarkSplit40k/discord      0.95 ms (21 parts; html 0.80, plain 0.82, slack 0.95)
//
// The Telegram adapter's own pipeline (oracle_test.go) took 59 µs, 0.46 ms
// and 5.2 ms to parse and split the 500, 6,000 and 40,000 character
// replies; this package takes 41 µs, 0.38 ms and 3.1 ms.

// BenchmarkParseSplit: a reply parsed, split and rendered for each
// network, as an adapter sends it.
func BenchmarkParseSplit(b *testing.B) {
	for _, size := range []int{500, 6000} {
		md := replyOf(size)
		for _, rr := range allRenderers {
			b.Run(fmt.Sprintf("%s/%d", rr.name, size), func(b *testing.B) {
				b.SetBytes(int64(len(md)))
				b.ReportAllocs()
				for b.Loop() {
					Split(Parse(md), rr.r, benchLimits[rr.name])
				}
			})
		}
	}
}

// BenchmarkSplit40k: splitting alone, of a 40,000-character reply.
func BenchmarkSplit40k(b *testing.B) {
	d := Parse(replyOf(40000))
	for _, rr := range allRenderers {
		b.Run(rr.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Split(d, rr.r, benchLimits[rr.name])
			}
		})
	}
}
