#!/usr/bin/env bash
# The dependency rules of the plugin API, checked by `make test`:
#   1. the core (core/...) never imports an adapter;
#   2. an adapter, and what every adapter links (the plugin API in core,
#      the kit, the test kit), never links the engine (core/engine,
#      core/store, core/selarti) nor its heavy dependencies (echo, viper,
#      Prometheus, a SQL driver), so that a new adapter is its network's
#      protocol and nothing else. The webchat's own mailbox is SQLite: it
#      may link the driver until the shared store takes its sessions;
#   3. an adapter never imports another one: what two need goes in kit/;
#   4. the binary, built with the Makefile's TAGS, links one JSON library
#      for the Telegram client: telego's default (github.com/grbit/go-json)
#      held 8 MB more heap than encoding/json (docs/benchmarks.md).
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
TAGS=${TAGS-stdjson} # the Makefile passes its own
fail=0

if bad=$($GO list -deps ./core/... | grep '/adapters/'); then
	echo "the core imports an adapter:"; echo "$bad"; fail=1
fi

engine='/core/engine$|/core/store$|/core/selarti$|github.com/labstack/echo|github.com/spf13/viper|github.com/prometheus/'
sql='^database/sql$|^modernc.org/sqlite|^github.com/jackc/pgx'
mod=$($GO list -m)
for pkg in $($GO list ./... | grep -E "^$mod/(core|core/messengertest|kit/.*|adapters/.*|examples/.*)$" | grep -v '/adapters/all$'); do
	forbidden="$engine|$sql"
	case "$pkg" in */adapters/webchat) forbidden="$engine" ;; esac
	if bad=$($GO list -deps "$pkg" | grep -E "$forbidden"); then
		echo "$pkg links what an adapter must not:"; echo "$bad" | sed 's/^/  /'; fail=1
	fi
done
for pkg in $($GO list ./adapters/... | grep -v '/adapters/all$'); do
	if bad=$($GO list -deps "$pkg" | grep "^$mod/adapters/" | grep -vx "$pkg"); then
		echo "$pkg imports another adapter:"; echo "$bad" | sed 's/^/  /'; fail=1
	fi
done
if bad=$($GO list -tags "$TAGS" -deps ./cmd/switchboard | grep -E '^github.com/grbit/go-json$'); then
	echo "the binary built with -tags '$TAGS' links telego's default JSON library ($bad): build with -tags stdjson"; fail=1
fi
exit $fail
