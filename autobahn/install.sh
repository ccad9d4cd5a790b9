#!/usr/bin/env bash
# Install the Autobahn|Testsuite (`wstest`) into a private prefix and print
# the absolute path of a `wstest` launcher on stdout (all progress goes to
# stderr, so `WSTEST=$(autobahn/install.sh)` works).
#
#   autobahn/install.sh                        # -> $HOME/.cache/ws-autobahn/bin/wstest
#   AUTOBAHN_PREFIX=/tmp/ab autobahn/install.sh
#
# wstest is Python 2.7 code and Debian 12 ships no Python 2. Unless
# AUTOBAHN_PYTHON2 names a working python2.7 interpreter, one is taken from
# Debian 11 ("bullseye") packages: they are downloaded with apt-get using a
# private apt state (the machine's configured Debian mirror, the machine's
# archive keyring) and unpacked with `dpkg -x` into the prefix. Nothing is
# installed system-wide, except that gcc and ca-certificates are installed
# with apt-get when missing and we are root (a few dependencies are C
# extensions, and pip needs the CA bundle).
# The suite itself and its dependencies come from the Python package index,
# at pinned versions.
#
# Environment:
#   AUTOBAHN_PREFIX         install prefix (default $HOME/.cache/ws-autobahn)
#   AUTOBAHN_PYTHON2        use this python2.7 instead of Debian 11 packages
#   AUTOBAHN_DEBIAN_MIRROR  Debian mirror URL (default: first one apt uses)
#   AUTOBAHN_DEBIAN_SUITE   suite holding python2.7 (default bullseye)
#
# Idempotent: when the launcher exists, matches this script's pinned
# versions and runs, the script only prints its path. Safe to run
# concurrently (an flock on the prefix serialises installers).
set -euo pipefail

# Bump when anything below changes what gets installed: forces a reinstall.
STAMP_VERSION="ws-autobahn-install 4 autobahntestsuite==25.10.1"

# The interpreter choice is part of what is installed.
STAMP_VERSION="$STAMP_VERSION python2=${AUTOBAHN_PYTHON2:-debian}"

PREFIX="${AUTOBAHN_PREFIX:-$HOME/.cache/ws-autobahn}"
mkdir -p "$PREFIX"
PREFIX="$(cd "$PREFIX" && pwd -P)"
case "$PREFIX" in
  *[\'\"\\\$\`]*) echo "autobahn/install.sh: unsupported characters in $PREFIX" >&2; exit 1 ;;
esac
LAUNCHER="$PREFIX/bin/wstest"
STAMP="$PREFIX/.installed"

say() { echo "autobahn/install.sh: $*" >&2; }
die() { say "error: $*"; exit 1; }

installed() {
  [ -x "$LAUNCHER" ] && [ -f "$STAMP" ] &&
    [ "$(cat "$STAMP")" = "$STAMP_VERSION" ] &&
    "$LAUNCHER" --help >/dev/null 2>&1
}

if installed; then echo "$LAUNCHER"; exit 0; fi

# One installer at a time per prefix; re-check after getting the lock.
exec 9>"$PREFIX/.lock"
flock 9
if installed; then echo "$LAUNCHER"; exit 0; fi

start=$(date +%s)
say "installing wstest into $PREFIX"
rm -rf "${PREFIX:?}/bin" "$PREFIX/py2" "$PREFIX/site" "$PREFIX/apt" "$STAMP"
mkdir -p "$PREFIX/bin"

# --- System prerequisites: a C compiler (wsaccel, ujson, twisted and
# zope.interface build C code) and the CA bundle pip verifies TLS with.
need=()
if ! command -v cc >/dev/null 2>&1 && ! command -v gcc >/dev/null 2>&1; then
  need+=(gcc libc6-dev)
fi
[ -s /etc/ssl/certs/ca-certificates.crt ] || need+=(ca-certificates)
if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing ${need[*]} with apt-get"
    DEBIAN_FRONTEND=noninteractive apt-get -q update >&2
    DEBIAN_FRONTEND=noninteractive apt-get -q install -y --no-install-recommends \
      "${need[@]}" >&2
  else
    die "missing system packages: ${need[*]} (install them, e.g. with apt-get)"
  fi
fi

# --- Python 2.7 --------------------------------------------------------------
# PY2_ENV holds the environment a private interpreter needs (may be empty).
PY2_ENV=()
PY2_CFLAGS=""
FROM_DEBIAN=0
if [ -n "${AUTOBAHN_PYTHON2:-}" ]; then
  PYTHON2="$AUTOBAHN_PYTHON2"
  "$PYTHON2" -c 'import sys; assert sys.version_info[:2] == (2, 7)' ||
    die "AUTOBAHN_PYTHON2=$PYTHON2 is not a working Python 2.7"
  say "using Python 2.7 at $PYTHON2"
else
  if ! command -v apt-get >/dev/null || ! command -v dpkg >/dev/null; then
    die "apt-get and dpkg are needed (or set AUTOBAHN_PYTHON2)"
  fi
  suite="${AUTOBAHN_DEBIAN_SUITE:-bullseye}"
  mirror="${AUTOBAHN_DEBIAN_MIRROR:-}"
  if [ -z "$mirror" ]; then
    # First ".../debian" URI of either the deb822 (*.sources) or the
    # one-line (sources.list) format; the security archive is skipped.
    mirror=$(cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list \
               /etc/apt/sources.list.d/*.list 2>/dev/null |
             awk '/^[[:space:]]*URIs:/ { for (i = 2; i <= NF; i++) print $i }
                  /^[[:space:]]*deb[[:space:]]/ {
                    for (i = 2; i <= NF; i++) if ($i ~ /:\/\//) { print $i; break } }' |
             grep -E '/debian/?$' | head -n 1 || true)
  fi
  [ -n "$mirror" ] ||
    die "found no Debian mirror in /etc/apt; set AUTOBAHN_DEBIAN_MIRROR"
  keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  [ -r "$keyring" ] || die "$keyring is missing (package debian-archive-keyring)"

  say "downloading Python 2.7 from Debian '$suite' packages"
  apt_dir="$PREFIX/apt"
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/debs"
  : >"$apt_dir/status"
  echo "deb [signed-by=$keyring] $mirror $suite main" >"$apt_dir/sources.list"
  apt_opts=(
    -q
    -o "Dir::Etc::SourceList=$apt_dir/sources.list"
    -o "Dir::Etc::SourceParts=/dev/null"
    -o "Dir::Etc::Preferences=/dev/null"
    -o "Dir::Etc::PreferencesParts=/dev/null"
    -o "Dir::State::Lists=$apt_dir/lists"
    -o "Dir::State::status=$apt_dir/status"
    -o "Dir::Cache=$apt_dir/cache"
    -o "Debug::NoLocking=1"
    -o "APT::Sandbox::User=$(id -un)"
  )
  apt-get "${apt_opts[@]}" update >&2
  # The interpreter and stdlib, headers for building C extensions, the
  # shared libraries bookworm lacks (OpenSSL 1.1, libffi7) or may lack
  # (expat, which twisted.web needs: not in a minimal install), the pip wheel.
  (cd "$apt_dir/debs" && apt-get "${apt_opts[@]}" download \
     python2.7 python2.7-minimal libpython2.7 libpython2.7-minimal \
     libpython2.7-stdlib python2.7-dev libpython2.7-dev \
     libssl1.1 libffi7 libexpat1 python-pip-whl >&2)
  for deb in "$apt_dir"/debs/*.deb; do dpkg -x "$deb" "$PREFIX/py2"; done

  py2root="$PREFIX/py2"
  libpython=""
  for f in "$py2root"/usr/lib/*/libpython2.7.so.1.0; do
    [ -e "$f" ] && { libpython=$f; break; }
  done
  [ -n "$libpython" ] || die "libpython2.7 not found after unpacking"
  libdir=$(dirname "$libpython")
  PYTHON2="$py2root/usr/bin/python2.7"
  FROM_DEBIAN=1
  # Some bullseye libraries (expat) live in /lib/TRIPLET rather than /usr/lib.
  PY2_ENV=("LD_LIBRARY_PATH=$libdir:$py2root/lib/$(basename "$libdir")"
           "PYTHONHOME=$py2root/usr")
  # Debian's pyconfig.h includes <TRIPLET/python2.7/pyconfig.h>.
  PY2_CFLAGS="-I$py2root/usr/include/python2.7 -I$py2root/usr/include"
  rm -rf "$apt_dir"   # lists and .debs are no longer needed
fi

py2() { env -u PYTHONPATH "${PY2_ENV[@]}" "$PYTHON2" "$@"; }
py2 -c 'import ssl, zlib, ctypes, hashlib, pyexpat' ||
  die "the Python 2.7 interpreter lacks ssl/zlib/ctypes/hashlib/pyexpat"

# --- pip and the suite -----------------------------------------------------
SITE="$PREFIX/site"
SITE_PACKAGES="$SITE/lib/python2.7/site-packages"
mkdir -p "$SITE_PACKAGES"
pip_opts=(--disable-pip-version-check --no-python-version-warning
          --no-warn-script-location --no-cache-dir -q --prefix "$SITE")

# Verify TLS against the system's trust store (as Debian's own pip does)
# rather than the CA list vendored in the pip we install.
if [ -z "${PIP_CERT:-}" ] && [ -s /etc/ssl/certs/ca-certificates.crt ]; then
  export PIP_CERT=/etc/ssl/certs/ca-certificates.crt
fi

say "installing pip for Python 2.7"
if [ "$FROM_DEBIAN" = 1 ]; then
  # Bootstrap from the Debian pip wheel and its unbundled dependencies.
  wheels=$(printf '%s:' "$PREFIX"/py2/usr/share/python-wheels/*.whl)
  env PYTHONPATH="$wheels" "${PY2_ENV[@]}" "$PYTHON2" -m pip install \
    "${pip_opts[@]}" "pip==20.3.4" "setuptools==44.0.0" "wheel==0.37.1" >&2
else
  py2 -m pip --version >/dev/null 2>&1 ||
    die "$PYTHON2 has no pip module"
  # (That pip may be too old for --no-python-version-warning.)
  py2 -m pip install --disable-pip-version-check --no-warn-script-location \
    --no-cache-dir -q --prefix "$SITE" --ignore-installed \
    "pip==20.3.4" "setuptools==44.0.0" "wheel==0.37.1" >&2
fi

# Versions of the suite's unpinned transitive dependencies that are known to
# work on Python 2.7 (the suite itself pins its direct dependencies).
constraints="$PREFIX/constraints.txt"
cat >"$constraints" <<'EOF'
attrs==21.4.0
Automat==22.10.0
cffi==1.15.1
constantly==15.1.0
enum34==1.1.10
hyperlink==21.0.0
idna==2.10
ipaddress==1.0.23
linecache2==1.0.0
pyasn1==0.5.1
pyasn1-modules==0.3.0
pycparser==2.21
PyHamcrest==1.10.1
traceback2==1.4.0
typing==3.10.0.0
ujson==2.0.3
wsaccel==0.6.6
EOF

say "installing autobahntestsuite (this compiles a few C extensions)"
env PYTHONPATH="$SITE_PACKAGES" CFLAGS="$PY2_CFLAGS" \
  "${PY2_ENV[@]}" "$PYTHON2" -m pip install "${pip_opts[@]}" \
  -c "$constraints" "autobahntestsuite==25.10.1" >&2

# --- The launcher --------------------------------------------------------------
# A Python bootstrap plus a shell wrapper setting the private interpreter's
# environment. site.addsitedir (not PYTHONPATH) so that the .pth files of
# namespace packages such as zope.interface are honoured.
cat >"$PREFIX/bin/wstest.py" <<EOF
# Bootstrap for wstest, written by autobahn/install.sh.
import os, site, sys
before = list(sys.path)
site.addsitedir("$SITE_PACKAGES")
# Our packages first, ahead of anything in the interpreter's own site-packages.
sys.path[:] = [p for p in sys.path if p not in before] + before
iface = os.environ.get("WSTEST_LISTEN_INTERFACE")
if iface:
    # wstest's WebSocket servers (fuzzingserver, echoserver, ...) listen on
    # all interfaces; WSTEST_LISTEN_INTERFACE=127.0.0.1 keeps them on loopback.
    import autobahn.twisted.websocket as _ws
    _listen = _ws.listenWS
    def _listen_on_iface(factory, contextFactory=None, backlog=50, interface=iface):
        return _listen(factory, contextFactory, backlog, interface)
    _ws.listenWS = _listen_on_iface
sys.argv[0] = "wstest"
from autobahntestsuite.wstest import run
run()
EOF
{
  echo '#!/bin/sh'
  echo "# wstest (Autobahn|Testsuite), written by autobahn/install.sh."
  echo 'unset PYTHONPATH PYTHONHOME'
  for kv in "${PY2_ENV[@]}"; do echo "export ${kv%%=*}='${kv#*=}'"; done
  echo "exec '$PYTHON2' '$PREFIX/bin/wstest.py' \"\$@\""
} >"$LAUNCHER.tmp"
chmod +x "$LAUNCHER.tmp"
mv "$LAUNCHER.tmp" "$LAUNCHER"
"$LAUNCHER" --help >/dev/null || die "the installed wstest does not start"
echo "$STAMP_VERSION" >"$STAMP"
say "done in $(( $(date +%s) - start ))s"
echo "$LAUNCHER"
