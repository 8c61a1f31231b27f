#!/usr/bin/env bash
# Installs the Debian packages the peer tests drive (STILTS, JSAMP, TOPCAT,
# Aladin, Xvfb, Chromium, PostgreSQL + pgSphere, GAVO DaCHS) when they are
# missing. Needs root and apt-get; elsewhere it says so and the tests that need
# a missing tool skip with that reason. It never fails the build by itself:
# a package that cannot be installed shows up as a named skip in pytest.
set -u
packages=(stilts jsamp topcat aladin xvfb imagemagick chromium postgresql-15 postgresql-15-pgsphere)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "debian test deps: all present"
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "debian test deps: NOT installing ${missing[*]} (need root and apt-get); tests using them will skip"
  exit 0
fi
echo "debian test deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null 2>&1 || echo "apt-get update failed"
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/alvo-apt.log 2>&1 \
  || { echo "debian test deps: install failed, see /tmp/alvo-apt.log (tests will skip)"; tail -5 /tmp/alvo-apt.log; }
exit 0
