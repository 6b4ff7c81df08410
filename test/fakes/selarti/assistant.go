package selarti

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"
)

// Answer is the simulated AI's reply to one user message, plus what that
// message tells Selarti about the dialog (the webhook flags).
type Answer struct {
	// Text is the bot's reply; it may contain Markdown, as real Selarti
	// replies may.
	Text string
	// Contact is a phone number found in the message, reduced to an
	// optional "+" and digits; "" when there is none.
	Contact string
	// Interest is set when the user asked about prices, delivery or
	// ordering.
	Interest bool
	// Operator is set when the user asked for a human.
	Operator bool
	// Close is set when the user said goodbye.
	Close bool
}

// Reply returns the simulated AI's reply to text. It is deterministic, so
// tests can compute the reply they expect: Reply("hello") is the greeting,
// and a message that matches no rule is quoted back (see Respond).
func Reply(text string) string { return Respond(text).Text }

// Respond runs the simulator's rule-based assistant on one user message.
// Rules are tried in this order, and the first that matches wins:
//
//   - a phone number (7 to 15 digits) → thanks, Contact set
//   - "operator", "human", "оператор", ... → hand-over to a human, Operator set
//   - "bye", "пока", ... → goodbye, Close set
//   - "price", "cost", "цена", ... → a Markdown price list, Interest set
//   - "delivery", "shipping", "доставка", ... → delivery terms, Interest set
//   - "order", "buy", "заказ", ... → asks for a phone number, Interest set
//   - "hi", "hello", "привет", ... → a greeting from the demo shop's assistant
//   - anything else → `You said: "<text>". I can help with ...`
//
// A message with Cyrillic letters is answered in Russian, anything else in
// English. There is no randomness.
func Respond(text string) Answer {
	lang := &english
	if hasCyrillic(text) {
		lang = &russian
	}
	if phone := findPhone(text); phone != "" {
		return Answer{Text: fmt.Sprintf(lang.phone, phone), Contact: phone}
	}
	words := tokenize(text)
	switch {
	case matchAny(words, operatorWords):
		return Answer{Text: lang.operator, Operator: true}
	case matchAny(words, byeWords):
		return Answer{Text: lang.bye, Close: true}
	case matchAny(words, priceWords):
		return Answer{Text: lang.price, Interest: true}
	case matchAny(words, deliveryWords):
		return Answer{Text: lang.delivery, Interest: true}
	case matchAny(words, orderWords):
		return Answer{Text: lang.order, Interest: true}
	case matchAny(words, greetingWords):
		return Answer{Text: lang.greeting}
	default:
		return Answer{Text: fmt.Sprintf(lang.fallback, strings.TrimSpace(text))}
	}
}

// replies is one language's set of canned answers.
type replies struct {
	greeting, price, delivery, order, operator, bye string
	phone, fallback                                 string // fmt formats with one %s
}

var english = replies{
	greeting: "Hello! I'm the demo assistant of Northwind Gadgets, a fictional shop. " +
		"I can tell you about our prices and delivery, or connect you to a human operator. How can I help?",
	price: "**Our prices**\n\n" +
		"- Smart lamp: **$29**\n" +
		"- Wireless speaker: **$59**\n" +
		"- Fitness band: **$45**\n\n" +
		"See the full catalogue at [shop.example.com](https://shop.example.com/catalogue).",
	delivery: "We deliver in **1–3 business days**. Delivery is free for orders over $50, otherwise it costs $5. " +
		"You can also pick your order up at our store for free.",
	order:    "Great choice! Send me your phone number and a manager will call you to confirm the order.",
	operator: "Connecting you to a human operator… Please stay in this chat, they will answer here.",
	bye:      "Goodbye! Thank you for visiting Northwind Gadgets.",
	phone:    "Thank you! We saved your number %s, a manager will call you soon.",
	fallback: `You said: "%s". I can help with prices, delivery or connect you to an operator.`,
}

var russian = replies{
	greeting: "Здравствуйте! Я демо-ассистент магазина Northwind Gadgets (магазин вымышленный). " +
		"Могу рассказать о ценах и доставке или позвать оператора. Чем помочь?",
	price: "**Наши цены**\n\n" +
		"- Умная лампа: **2 900 ₽**\n" +
		"- Беспроводная колонка: **5 900 ₽**\n" +
		"- Фитнес-браслет: **4 500 ₽**\n\n" +
		"Весь каталог: [shop.example.com](https://shop.example.com/catalogue).",
	delivery: "Доставляем за **1–3 рабочих дня**. При заказе от 5 000 ₽ доставка бесплатная, иначе 500 ₽. " +
		"Можно бесплатно забрать заказ в нашем магазине.",
	order:    "Отличный выбор! Пришлите номер телефона, и менеджер перезвонит, чтобы подтвердить заказ.",
	operator: "Соединяю вас с оператором… Не закрывайте чат, вам ответят здесь.",
	bye:      "До свидания! Спасибо, что заглянули в Northwind Gadgets.",
	phone:    "Спасибо! Мы записали ваш номер %s, менеджер скоро перезвонит.",
	fallback: "Вы написали: «%s». Я могу рассказать о ценах и доставке или позвать оператора.",
}

// Keyword lists. A word ending in "*" matches any word it begins (a stem:
// "доставк*" matches "доставка", "доставки"); other words match exactly,
// so "hi" does not match "hit".
var (
	greetingWords = []string{"hi", "hello", "hey", "привет", "здравствуйте", "здравствуй", "добрый"}
	priceWords    = []string{"price*", "cost*", "цен*", "стоимост*", "стоит"}
	deliveryWords = []string{"deliver*", "shipping", "доставк*", "доставит*"}
	orderWords    = []string{"order*", "buy", "заказ*", "купить", "куплю"}
	operatorWords = []string{"operator*", "human*", "оператор*", "человек*", "менеджер*"}
	byeWords      = []string{"bye", "goodbye", "пока", "свидания"}
)

func tokenize(text string) []string {
	return strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
}

func matchAny(words, keywords []string) bool {
	for _, w := range words {
		for _, k := range keywords {
			if stem, ok := strings.CutSuffix(k, "*"); ok {
				if strings.HasPrefix(w, stem) {
					return true
				}
			} else if w == k {
				return true
			}
		}
	}
	return false
}

func hasCyrillic(text string) bool {
	for _, r := range text {
		if unicode.Is(unicode.Cyrillic, r) {
			return true
		}
	}
	return false
}

// phoneCandidate finds digit runs that may be written with spaces, dashes,
// dots or brackets ("+7 (900) 123-45-67"); findPhone then checks the digit
// count, so "order 42" is not a phone number.
var phoneCandidate = regexp.MustCompile(`\+?\d[\d ().\-]{4,22}\d`)

func findPhone(text string) string {
	for _, m := range phoneCandidate.FindAllString(text, -1) {
		var b strings.Builder
		for _, r := range m {
			if r == '+' || (r >= '0' && r <= '9') {
				b.WriteRune(r)
			}
		}
		phone := b.String()
		digits := len(strings.TrimPrefix(phone, "+"))
		if digits >= 7 && digits <= 15 {
			return phone
		}
	}
	return ""
}
