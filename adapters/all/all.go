// Package all is the one list of adapter kinds built into Switchboard: one
// blank import per kind. The binary and the end-to-end tests import it.
// Adding a messenger is adding a package and one line here.
package all

import (
	_ "github.com/switchboard-gw/switchboard/adapters/discord"  // discord: Discord bots (gateway session, REST)
	_ "github.com/switchboard-gw/switchboard/adapters/slack"    // slack: Slack apps (Socket Mode or the Events API, Web API)
	_ "github.com/switchboard-gw/switchboard/adapters/telegram" // telegram: Telegram bots (Bot API, polling or webhook)
	_ "github.com/switchboard-gw/switchboard/adapters/webchat"  // webchat: the built-in browser chat
)
