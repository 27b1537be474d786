#!/usr/bin/env bash
# Installs what Warden needs on Debian 12 (run as root, or with sudo available).
# Idempotent and quick when everything is already present: nothing is fetched then.
set -euo pipefail

# The -dev packages carry the static archives the build links (libgit2's own dependencies come
# with libgit2-dev); libstdc++-12-dev the C++ runtime's, which release binaries link statically.
packages=(libgit2-dev libseccomp-dev zlib1g-dev libssl-dev libstdc++-12-dev pkg-config git patch bash coreutils procps python3 python3-venv binutils time)
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "install.sh: installing ${missing[*]}" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The jail's tests and the starter tasks run pytest with whichever python3 is first on PATH.
if ! python3 -m pytest --version >/dev/null 2>&1; then
  echo "install.sh: installing pytest for $(command -v python3)" >&2
  if [ "$(command -v python3)" = /usr/bin/python3 ]; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-pytest >/dev/null
  else
    python3 -m pip install --quiet pytest
  fi
fi

# The starter suite's Node tasks (and the tests that run them) need node with node:test.
if ! command -v node >/dev/null 2>&1; then
  echo "install.sh: installing nodejs" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs >/dev/null
fi

# The environment server's tests drive it with OpenEnv's published client, in a venv of its own.
openenv_venv="${WARDEN_OPENENV_VENV:-$HOME/.cache/warden/openenv}"
if ! "$openenv_venv/bin/python" -c "import openenv.core.generic_client" >/dev/null 2>&1; then
  echo "install.sh: installing openenv-core (OpenEnv's client) into $openenv_venv" >&2
  python3 -m venv "$openenv_venv"
  "$openenv_venv/bin/pip" install --quiet --disable-pip-version-check openenv-core==0.3.0
fi

# The report's tests open warden's HTML in a real headless browser (Debian's Chromium).
if ! command -v chromium >/dev/null 2>&1; then
  echo "install.sh: installing chromium (the HTML report's browser tests)" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
fi

if ! command -v swift >/dev/null 2>&1; then
  echo "install.sh: no Swift toolchain on PATH; Warden needs Swift 6 (swift.org toolchain for Debian 12)" >&2
  exit 1
fi
