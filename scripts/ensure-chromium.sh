#!/usr/bin/env bash
# Installs headless Chromium (Debian's package) for the browser end-to-end
# test, if it is not there yet. The test finds it at /usr/bin/chromium or
# through $CHROMIUM.
set -euo pipefail
for c in "${CHROMIUM:-}" /usr/bin/chromium /usr/bin/chromium-browser; do
	if [ -n "$c" ] && [ -x "$c" ]; then
		exit 0
	fi
done
if [ "$(id -u)" != 0 ]; then
	echo "chromium is missing and we are not root: install Debian's 'chromium' package (or set CHROMIUM=/path/to/chrome)" >&2
	exit 1
fi
echo "installing chromium (Debian package) for the browser test..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium >/dev/null
echo "chromium installed: $(/usr/bin/chromium --version 2>/dev/null || echo '?')"
