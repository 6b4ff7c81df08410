package selarti

import (
	"strings"
	"testing"
)

func TestReplyExactTexts(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{
			name: "hello is the greeting",
			in:   "hello",
			want: "Hello! I'm the demo assistant of Northwind Gadgets, a fictional shop. " +
				"I can tell you about our prices and delivery, or connect you to a human operator. How can I help?",
		},
		{
			name: "greeting word inside a sentence",
			in:   "Hi there!",
			want: Reply("hello"),
		},
		{
			name: "unknown text is quoted",
			in:   "  what's the weather  ",
			want: `You said: "what's the weather". I can help with prices, delivery or connect you to an operator.`,
		},
		{
			name: "hi is a whole word only",
			in:   "hit me",
			want: `You said: "hit me". I can help with prices, delivery or connect you to an operator.`,
		},
		{
			name: "russian unknown text is quoted in russian",
			in:   "как дела",
			want: "Вы написали: «как дела». Я могу рассказать о ценах и доставке или позвать оператора.",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Reply(tt.in); got != tt.want {
				t.Errorf("Reply(%q) =\n%q\nwant\n%q", tt.in, got, tt.want)
			}
		})
	}
}

func TestRespondRules(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		contains []string
		want     Answer // Text is ignored; flags and contact are compared
	}{
		{name: "price is markdown", in: "What are your prices?", contains: []string{"**", "\n- ", "](https://"}, want: Answer{Interest: true}},
		{name: "cost", in: "how much does it cost", contains: []string{"$29"}, want: Answer{Interest: true}},
		{name: "russian price", in: "Какая цена?", contains: []string{"**Наши цены**"}, want: Answer{Interest: true}},
		{name: "delivery", in: "Do you deliver to Berlin?", contains: []string{"business days"}, want: Answer{Interest: true}},
		{name: "russian delivery", in: "сколько идёт доставка", contains: []string{"рабочих дня"}, want: Answer{Interest: true}},
		{name: "russian how much", in: "сколько стоит лампа", contains: []string{"2 900 ₽"}, want: Answer{Interest: true}},
		{name: "order", in: "I want to order a lamp", contains: []string{"phone number"}, want: Answer{Interest: true}},
		{name: "phone", in: "call me at +7 (900) 123-45-67 please", contains: []string{"+79001234567"}, want: Answer{Contact: "+79001234567"}},
		{name: "phone wins over operator", in: "operator, my number is 555 123 4567", contains: []string{"5551234567"}, want: Answer{Contact: "5551234567"}},
		{name: "short number is not a phone", in: "order 42", contains: []string{"phone number"}, want: Answer{Interest: true}},
		{name: "operator", in: "let me talk to a human", contains: []string{"Connecting you to a human operator…"}, want: Answer{Operator: true}},
		{name: "russian operator", in: "позовите оператора", contains: []string{"оператором"}, want: Answer{Operator: true}},
		{name: "bye", in: "ok bye", contains: []string{"Goodbye!"}, want: Answer{Close: true}},
		{name: "russian bye", in: "пока", contains: []string{"До свидания!"}, want: Answer{Close: true}},
		{name: "russian greeting", in: "Привет", contains: []string{"демо-ассистент"}, want: Answer{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Respond(tt.in)
			for _, c := range tt.contains {
				if !strings.Contains(got.Text, c) {
					t.Errorf("Respond(%q).Text = %q, want it to contain %q", tt.in, got.Text, c)
				}
			}
			got.Text = ""
			if got != tt.want {
				t.Errorf("Respond(%q) flags = %+v, want %+v", tt.in, got, tt.want)
			}
			if again := Respond(tt.in); again.Text != Reply(tt.in) {
				t.Errorf("Respond and Reply disagree for %q", tt.in)
			}
		})
	}
}
