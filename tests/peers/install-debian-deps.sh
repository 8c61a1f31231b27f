#!/usr/bin/env bash
# Installs the Debian packages the peer tests drive (STILTS, JSAMP, TOPCAT,
# Aladin, Xvfb, Chromium (+ npm, for axe-core), PostgreSQL + pgSphere, GAVO DaCHS, a
# single-node SLURM with munge: tests/peers/slurm.py) when they are
# missing. Needs root and apt-get; elsewhere it says so and the tests that need
# a missing tool skip with that reason. It never fails the build by itself:
# a package that cannot be installed shows up as a named skip in pytest.
set -u
here=$(cd "$(dirname "$0")" && pwd)
packages=(stilts jsamp topcat aladin xvfb imagemagick chromium npm postgresql-15 postgresql-15-pgsphere slurm-wlm munge)
# npm also comes inside other nodejs builds (NodeSource's conflicts with Debian's npm):
# a command already on PATH is as good as the package.
installed() {
  [ "$1" = npm ] && command -v npm >/dev/null && return 0
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}
missing=()
for p in "${packages[@]}" gavodachs2-server; do installed "$p" || missing+=("$p"); done
if [ ${#missing[@]} -eq 0 ]; then
  echo "debian test deps: all present"
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "debian test deps: NOT installing ${missing[*]} (need root and apt-get); tests using them will skip"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
log=/tmp/alvo-apt.log
echo "debian test deps: installing ${missing[*]} (log: $log)"
apt-get update -qq >>"$log" 2>&1 || echo "apt-get update failed"
todo=()
for p in "${packages[@]}"; do installed "$p" || todo+=("$p"); done
if [ ${#todo[@]} -gt 0 ]; then
  if ! apt-get install -y -qq --no-install-recommends "${todo[@]}" >>"$log" 2>&1; then
    # one package apt cannot place must not cost the others: try them one by one
    for p in "${todo[@]}"; do
      installed "$p" || apt-get install -y -qq --no-install-recommends "$p" >>"$log" 2>&1 \
        || echo "debian test deps: $p failed (tests that need it will skip; $log)"
    done
  fi
fi
# Debian's pgSphere script does not load on PostgreSQL >= 15.20 (see the patch's docstring).
python3 "$here/patch_pgsphere.py"
if ! installed gavodachs2-server; then
  # DaCHS's post-install talks to PostgreSQL: the cluster must run first (no systemd here).
  pg_ctlcluster 15 main start >>"$log" 2>&1 || true
  apt-get install -y -qq gavodachs2-server >>"$log" 2>&1 || dpkg --configure -a >>"$log" 2>&1 \
    || { echo "debian test deps: gavodachs2-server failed (DaCHS tests will skip)"; tail -5 "$log"; }
fi
exit 0
