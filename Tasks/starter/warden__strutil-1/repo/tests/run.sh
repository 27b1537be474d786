#!/usr/bin/env bash
# Run every tests/test_*.sh file as one TAP stream.
set -u
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=/dev/null
source "$here/../lib/strutil.sh"
# shellcheck source=/dev/null
source "$here/tap.sh"
for t in "$here"/test_*.sh; do
    # shellcheck source=/dev/null
    source "$t"
done
tap_done
