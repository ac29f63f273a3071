#!/usr/bin/env bash
# System libraries the kit needs beyond Python: Pango/HarfBuzz for WeasyPrint (PDF reports),
# DejaVu fonts for a predictable look, poppler-utils to look at PDF pages.
# Installs them when running as root with apt-get; otherwise prints the exact command.
set -u
pkgs="libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core poppler-utils"
missing=""
for p in $pkgs; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
command -v dpkg >/dev/null 2>&1 || { echo "system-deps: not a Debian/Ubuntu system; install Pango (>= 1.44) and HarfBuzz for WeasyPrint yourself." >&2; exit 0; }
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "system-deps: installing$missing"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null) \
    || echo "system-deps: apt-get failed; PDF export may not work. Run: sudo apt-get install -y$missing" >&2
else
  echo "system-deps: missing$missing. Run: sudo apt-get install -y$missing" >&2
fi
exit 0
