package mychat

import (
	"testing"

	"github.com/switchboard-gw/switchboard/core/messengertest"
)

// TestExample keeps example.yaml complete and in step with the defaults.
// A built-in kind also has its block checked in config.yaml.example:
// MyChat is not one (NotBuiltIn).
func TestExample(t *testing.T) {
	messengertest.CheckExample(t, messengertest.Example[Config]{
		Kind:         Kind,
		YAML:         Example,
		Defaults:     func() Config { var c Config; c.setDefaults(); return c },
		Placeholders: map[string]string{"token": "${MYCHAT_TOKEN}"},
		NotBuiltIn:   true,
	})
}
