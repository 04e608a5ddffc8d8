#!/usr/bin/env bash
# test.sh -- the whole test suite: installs what the tests need on a fresh machine (as root, from Debian's
# packages), builds everything in Release and runs every test project. Exit code 0 only if all pass.
set -euo pipefail
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")"

# Debian packages the tests and benchmark anchors use: gcc + libpmem-dev build the PMDK anchor; fuse3 gives
# fusermount3 (the FUSE layer's non-root mount path is tested); sqlite3, fio, stress-ng, git, tar and diffutils are
# the programs of the integration suite.
need=()
command -v gcc >/dev/null || need+=(gcc)
[ -f /usr/include/libpmem.h ] || need+=(libpmem-dev)
command -v fusermount3 >/dev/null || need+=(fuse3)
# The integration suite runs real programs on a real mount (tests/DaxFs.Integration.Tests) and `daxfs bench fuse`
# runs fio.
command -v sqlite3 >/dev/null || need+=(sqlite3)
command -v fio >/dev/null || need+=(fio)
command -v stress-ng >/dev/null || need+=(stress-ng)
command -v git >/dev/null || need+=(git)
command -v tar >/dev/null || need+=(tar)
command -v diff >/dev/null || need+=(diffutils)
command -v cmp >/dev/null || need+=(diffutils)
command -v setpriv >/dev/null || need+=(util-linux)   # the POSIX test's unprivileged steps
command -v mount >/dev/null || need+=(mount)          # mount/umount of the tmpfs the POSIX test compares with
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
