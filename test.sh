#!/usr/bin/env bash
# test.sh -- the whole test suite: installs what the tests need on a fresh machine (as root, from Debian's
# packages), builds everything in Release and runs every test project. Exit code 0 only if all pass.
set -euo pipefail
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")"

# Debian packages the tests and benchmark anchors use: gcc + libpmem-dev build the PMDK anchor; fuse3 gives
# fusermount3 (the FUSE layer's non-root mount path is tested).
need=()
command -v gcc >/dev/null || need+=(gcc)
[ -f /usr/include/libpmem.h ] || need+=(libpmem-dev)
command -v fusermount3 >/dev/null || need+=(fuse3)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "test.sh: missing ${need[*]}; install them (apt-get install -y ${need[*]}) or run as root" >&2
    exit 1
  fi
  echo "test.sh: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi

dotnet build DaxFs.sln -c Release --nologo -v q
# A hung test fails its run after 10 minutes, naming the test, instead of holding CI until its deadline.
dotnet test DaxFs.sln -c Release --no-build --nologo -v q --logger "console;verbosity=normal" \
  --blame-hang-timeout 10m --blame-hang-dump-type none "$@"
