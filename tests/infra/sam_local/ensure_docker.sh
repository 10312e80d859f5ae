#!/usr/bin/env bash
# Make a Docker engine available for `sam local invoke` and `make deploy-test`: install Debian's
# docker.io (and debootstrap, for the stand-in image; with --registry also docker-registry, the
# local registry LocalStack's Lambda pulls the runtime image from) where missing, and start dockerd by hand where it is not
# running (CI machines have no init system running services). Needs root, as CI runs.
set -euo pipefail
LOG=${DOCKERD_LOG:-/tmp/market-totals-dockerd.log}

missing=()
[ "${1:-}" != --registry ] || command -v docker-registry >/dev/null || missing+=(docker-registry)
command -v dockerd >/dev/null || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} from Debian"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; } \
    || { echo "could not install ${missing[*]} with apt-get (needs root and Debian's mirror)" >&2; exit 1; }
fi

if ! docker info >/dev/null 2>&1; then
  echo "starting dockerd (log: $LOG)"
  nohup dockerd >"$LOG" 2>&1 &
  for _ in $(seq 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || { tail -20 "$LOG" >&2; echo "dockerd did not start" >&2; exit 1; }
fi
echo "docker engine $(docker version -f '{{.Server.Version}}')"
