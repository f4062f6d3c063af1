#!/usr/bin/env bash
# Makes sure Debian's Chromium is at /usr/bin/chromium for the web UI's browser tests (issue 15);
# playwright-core drives it (`npx playwright install` cannot download browsers here).
# Installs the `chromium` package when absent (needs root and apt); otherwise says why not.
set -euo pipefail
if [[ -x /usr/bin/chromium ]]; then exit 0; fi
if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
  echo "setup_chromium: installing chromium from Debian's packages" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >&2 ||
    { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >&2; }
else
  echo "setup_chromium: /usr/bin/chromium is absent and cannot be installed here (needs root + apt)" >&2
  exit 1
fi
