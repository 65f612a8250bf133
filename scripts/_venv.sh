# shellcheck shell=bash
# Shared by scripts/run and scripts/test (sourced, never run on its own): make sure the project's
# virtualenv ./.venv exists and has Deskbell installed in it, the same way for both scripts.
#
#   venv_ready [EXTRAS]  create ./.venv if needed, then `pip install -e .[EXTRAS]` into it (EXTRAS
#                        comma-separated: test,postgres), but only when pyproject.toml changed
#                        since the last install or the `deskbell` entry point is missing, so a
#                        second start is fast.
#
# Always a virtualenv, never the system Python: Debian and Ubuntu refuse `pip install` outside one
# (PEP 668) and may not ship pip at all. $PYTHON (default python3) is only used to create ./.venv.
# Expects the caller to have done `set -euo pipefail` and cd'd to the project root. Progress lines
# ("==> …") go to stderr so that the output of the command that follows stays clean.

VENV=.venv
PYTHON=${PYTHON:-python3}

say() { echo "==> $*" >&2; }
die() { echo "$*" >&2; exit 1; }

# A usable venv has a Python that starts and a pip it can run.
_venv_usable() {
  "$VENV/bin/python" -c '' 2>/dev/null && "$VENV/bin/python" -m pip --version >/dev/null 2>&1
}

# "" when running as root, "sudo -n" with passwordless sudo; fails otherwise.
_as_root() {
  if [ "$(id -u)" = 0 ]; then
    echo ""
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    echo "sudo -n"
  else
    return 1
  fi
}

# Debian/Ubuntu split Python's venv module (and ensurepip) into the python3-venv package.
_install_venv_package() {
  local package=$1 sudo
  if ! command -v apt-get >/dev/null 2>&1 || ! sudo=$(_as_root); then
    die "Python's venv module is missing, so ./.venv cannot be created.
Install it, then run this again:  sudo apt-get install $package"
  fi
  say "installing $package with apt-get (needed to create ./.venv)"
  if ! { $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 \
    && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >&2; }; then
    die "apt-get could not install $package; install it, then run this again"
  fi
}

_venv_create() {
  command -v "$PYTHON" >/dev/null 2>&1 \
    || die "$PYTHON not found: install Python 3.11 or newer (Debian/Ubuntu: apt-get install python3 python3-venv)"
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "Deskbell needs Python 3.11 or newer; $PYTHON is $("$PYTHON" -V 2>&1)"
  if [ -e "$VENV" ]; then
    say "./.venv is incomplete (no working python or pip); recreating it"
    rm -rf "$VENV"
  fi
  say "creating ./.venv with $("$PYTHON" -V 2>&1)"
  local output package
  if output=$("$PYTHON" -m venv "$VENV" 2>&1); then
    return
  fi
  rm -rf "$VENV"
  if ! grep -q -e ensurepip -e 'No module named venv' <<<"$output"; then
    die "$output"
  fi
  # python3-venv serves the default python3; for another $PYTHON use the package Debian names
  # in its message ("apt install python3.12-venv").
  package=python3-venv
  if [ "$PYTHON" != python3 ]; then
    package=$(sed -n 's/.*apt install \(python3[.0-9]*-venv\).*/\1/p' <<<"$output" | head -n1)
    package=${package:-python3-venv}
  fi
  _install_venv_package "$package"
  "$PYTHON" -m venv "$VENV"
}

_venv_setup() {
  local extra=$1 spec=. stamp="$VENV/.deskbell-installed"
  if [ -n "$extra" ]; then
    spec=".[$extra]"
    stamp="$stamp-$extra"
  fi
  if ! _venv_usable; then
    _venv_create
  fi
  local installs=("$stamp") s
  # An install with an extra installed the package too.
  [ -n "$extra" ] || installs+=("$stamp"-*)
  if [ -x "$VENV/bin/deskbell" ]; then
    for s in "${installs[@]}"; do
      if [ -f "$s" ] && ! [ pyproject.toml -nt "$s" ]; then
        return
      fi
    done
  fi
  say "installing deskbell${extra:+ with its $extra extras} into ./.venv"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$spec" >&2
  touch "$stamp"
}

venv_ready() {
  # Hold a lock while setting up, so two scripts started at once do not both build ./.venv.
  if command -v flock >/dev/null 2>&1; then
    exec 9<"${BASH_SOURCE[0]}"
    flock 9
  fi
  _venv_setup "${1:-}"
  exec 9<&-
}
