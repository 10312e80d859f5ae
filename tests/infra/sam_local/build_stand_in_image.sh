#!/usr/bin/env bash
# Build a local stand-in for AWS's Lambda base image public.ecr.aws/lambda/python:3.13-x86_64,
# for machines that reach no container registry (this project's CI). Users with a registry get
# AWS's real image and never run this.
#
# `sam local invoke` derives its own image FROM that tag: it adds the runtime interface emulator
# (RIE) at /var/rapid with a RUN mv/chmod (so the base needs /bin/sh and coreutils), mounts the
# built function at /var/task and starts the RIE as the entrypoint; the RIE runs
# /var/runtime/bootstrap with the handler in $_HANDLER / $AWS_LAMBDA_FUNCTION_HANDLER. So the
# stand-in is: a Debian rootfs (debootstrap), a CPython 3.13 at /var/lang, awslambdaric in
# /var/runtime and a bootstrap that runs it.
#
# The image is cached: it is rebuilt only when missing or when this script, its requirements or
# the interpreter changed (a label carries their digest).
set -euo pipefail

TAG=${STAND_IN_TAG:-public.ecr.aws/lambda/python:3.13-x86_64}
PYTHON_HOME=${STAND_IN_PYTHON_HOME:-$(ls -d "$HOME"/.pyenv/versions/3.13* 2>/dev/null | sort -V | tail -1)}
SUITE=bookworm
# The Debian mirror apt is already configured with here (deb822 or one-line sources).
apt_mirror() {
  { grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}'
    grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print $2}'
  } | grep -E '/debian/?$' | head -1 || true
}
MIRROR=${DEBIAN_MIRROR:-$(apt_mirror)}
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=${STAND_IN_WORKDIR:-$HERE/../../build/stand-in}

[ -n "$MIRROR" ] || { echo "apt names no Debian mirror; set DEBIAN_MIRROR" >&2; exit 1; }
[ -x "$PYTHON_HOME/bin/python3.13" ] || { echo "no CPython 3.13 found (looked for $PYTHON_HOME)" >&2; exit 1; }

digest=$( (cat "$0" "$HERE/stand-in-requirements.txt"; "$PYTHON_HOME/bin/python3.13" -VV) | sha256sum | cut -c1-16)
if [ "$(docker image inspect -f '{{ index .Config.Labels "market-totals.stand-in" }}' "$TAG" 2>/dev/null)" = "$digest" ]; then
  echo "stand-in image $TAG is current ($digest)"
  exit 0
fi

rm -rf "$WORK"
mkdir -p "$WORK"
root="$WORK/rootfs"
# Shared libraries the interpreter's extension modules link against, beyond minbase.
debootstrap --variant=minbase --include=libssl3,libffi8,libsqlite3-0,libexpat1,libreadline8 \
  "$SUITE" "$root" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
  || { tail -20 "$WORK/debootstrap.log" >&2; exit 1; }

# The interpreter, as AWS lays it out (/var/lang), without tests, GUI modules and static libs.
mkdir -p "$root/var/lang" "$root/var/runtime" "$root/var/task"
tar -C "$PYTHON_HOME" \
  --exclude='lib/python3.13/test' --exclude='lib/python3.13/idlelib' \
  --exclude='lib/python3.13/tkinter' --exclude='lib/python3.13/turtledemo' \
  --exclude='lib/python3.13/site-packages/*' --exclude='*.a' \
  -cf - bin lib include | tar -C "$root/var/lang" -xf -
# The binary's RUNPATH names the pyenv tree; the loader cache finds libpython here instead.
echo /var/lang/lib >"$root/etc/ld.so.conf.d/var-lang.conf"
chroot "$root" /sbin/ldconfig
chroot "$root" /var/lang/bin/python3.13 -c 'import ssl, ctypes, sqlite3, decimal, json'

"$PYTHON_HOME/bin/python3.13" -m pip install --quiet --root-user-action=ignore --no-compile --only-binary=:all: \
  --target "$root/var/runtime" -r "$HERE/stand-in-requirements.txt"
cat >"$root/var/runtime/bootstrap" <<'BOOTSTRAP'
#!/bin/sh
# Stand-in bootstrap: the runtime interface client serves the handler the RIE names.
export PYTHONPATH="/var/task:/var/runtime${PYTHONPATH:+:$PYTHONPATH}"
exec /var/lang/bin/python3.13 -m awslambdaric "${_HANDLER:-$AWS_LAMBDA_FUNCTION_HANDLER}"
BOOTSTRAP
chmod 755 "$root/var/runtime/bootstrap"

rm -rf "$root/var/cache/apt/archives"/*.deb "$root/var/lib/apt/lists"/*
previous=$(docker image inspect -f '{{.Id}}' "$TAG" 2>/dev/null || true)
tar -C "$root" -cf - . | docker import \
  --change 'ENV PATH=/var/lang/bin:/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'ENV TZ=:/etc/localtime' \
  --change 'ENV LAMBDA_TASK_ROOT=/var/task' \
  --change 'ENV LAMBDA_RUNTIME_DIR=/var/runtime' \
  --change 'WORKDIR /var/task' \
  --change 'ENTRYPOINT ["/var/runtime/bootstrap"]' \
  --change "LABEL market-totals.stand-in=$digest" \
  - "$TAG" >/dev/null
# SAM reuses the image it derived from the base (tag ...:3.13-rapid-x86_64) and, with
# --skip-pull-image, never notices a new base: drop the derived image and the old base.
docker image ls --format '{{.Repository}}:{{.Tag}}' "${TAG%%:*}" | grep -- '-rapid-' \
  | xargs -r docker image rm >/dev/null || true
[ -z "$previous" ] || docker image rm "$previous" >/dev/null 2>&1 || true
rm -rf "$WORK"
echo "built stand-in image $TAG ($digest)"
