#!/usr/bin/env bash
# Debian's Chromium and ChromeDriver for the dashboard's browser tests (tests/dashboard).
# Idempotent and quiet: does nothing when both are installed. Test tools' own browser
# downloads cannot run here; Debian's packages can.
set -euo pipefail
if [[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]]; then
  exit 0
fi
sudo=""
if [[ "$(id -u)" != 0 ]]; then
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null
$sudo apt-get install -y -qq chromium chromium-driver >/dev/null
echo "installed $(/usr/bin/chromium --version 2>/dev/null)"
