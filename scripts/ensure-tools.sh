#!/usr/bin/env bash
# Installs what the tests and the demo need and is missing, or stops with one line saying
# what to install. Never skips silently.
set -euo pipefail
cd "$(dirname "$0")/.."
need_infra=${1:-}

have() { command -v "$1" >/dev/null 2>&1; }
apt_install() {
  if have apt-get && [ "$(id -u)" = 0 ]; then
    echo "installing $* (apt-get)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null
  else
    echo "missing: $* — install it (e.g. sudo apt-get install $*) and run again" >&2
    exit 1
  fi
}

have cargo || { echo "missing: cargo — install Rust from https://rustup.rs (1.94 or newer)" >&2; exit 1; }
have python3 || apt_install python3 python3-venv
have openssl || apt_install openssl
if ! have initdb && [ ! -x /usr/local/bin/initdb ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  apt_install postgresql
fi
have psql || apt_install postgresql-client
if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
  useradd --system --create-home postgres
fi

# A pinned moto and cfn-lint in .venv, reused when requirements-dev.txt has not changed.
if [ ! -f .venv/.requirements-dev.txt ] || ! cmp -s requirements-dev.txt .venv/.requirements-dev.txt; then
  echo "setting up .venv (moto, cfn-lint)" >&2
  python3 -m venv .venv
  .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt
  cp requirements-dev.txt .venv/.requirements-dev.txt
fi

if [ "$need_infra" = infra ]; then
  have node || apt_install nodejs
  have npm || apt_install npm
fi
