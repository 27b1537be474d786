#!/usr/bin/env bash
# The install steps of the Containerfile, as a script so CI can run them without a container
# engine (scripts/check-container runs them into a scratch directory).
#
#   scripts/container-install.sh TARBALL PREFIX [--with-packages]
#
# Unpacks the release tarball into PREFIX and checks its SHA256SUMS. With --with-packages it
# first installs the Debian 12 packages the static binaries and the starter suite need at run
# time: zlib (every other library is linked in), bash, git and patch for checkouts and
# scoring, python3 with pytest for the starter suite. No Swift toolchain.
set -euo pipefail
tarball="$1"; prefix="$2"; packages="${3:-}"

if [ "$packages" = --with-packages ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    zlib1g bash git patch ca-certificates python3 python3-pytest >/dev/null
  rm -rf /var/lib/apt/lists/*
fi

mkdir -p "$prefix"
tar -xzf "$tarball" -C "$prefix" --strip-components=1
(cd "$prefix" && sha256sum --quiet -c SHA256SUMS)
"$prefix/bin/warden" --version
