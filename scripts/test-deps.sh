#!/usr/bin/env bash
# What the tests need beyond Python: Debian's Chromium, which the browser test drives with
# Playwright (every HTML of the sample run opened headless: no console error, no request
# outside the file, every table and figure with a size). Installed when running as root
# with apt-get; otherwise the exact command is printed and that test skips with the reason.
set -u
command -v chromium >/dev/null 2>&1 && exit 0
command -v dpkg >/dev/null 2>&1 || { echo "test-deps: not a Debian/Ubuntu system; install Chromium yourself for the browser test." >&2; exit 0; }
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "test-deps: installing chromium"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "test-deps: apt-get failed; the browser test will skip. Run: sudo apt-get install -y chromium" >&2
else
  echo "test-deps: chromium missing; the browser test will skip. Run: sudo apt-get install -y chromium" >&2
fi
exit 0
