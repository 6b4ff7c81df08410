package richtext

import (
	"reflect"
	"sync"
	"testing"
)

// TestConcurrent: the parsers are pooled, so conversions running at
// once must not share one (run with -race) nor see each other's input;
// neither may splits and renderings.
func TestConcurrent(t *testing.T) {
	inputs := []string{
		"**bold** and _it_",
		"```go\nx < y\n```",
		"- one\n- two\n\n> quote",
		"[link](https://example.com) ~~gone~~ @everyone",
	}
	split := func(md string) [][]Part {
		var out [][]Part
		for _, rr := range allRenderers {
			out = append(out, Split(Parse(md), rr.r, Limit{Max: 12, Measure: Runes, Rendered: rr.rendered}))
		}
		return out
	}
	want := make([][][]Part, len(inputs))
	for i, in := range inputs {
		want[i] = split(in)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for n := range 200 {
				i := (g + n) % len(inputs)
				if got := split(inputs[i]); !reflect.DeepEqual(got, want[i]) {
					t.Errorf("concurrent conversion of %q = %+v, want %+v", inputs[i], got, want[i])
					return
				}
			}
		})
	}
	wg.Wait()
}
