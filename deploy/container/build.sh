#!/usr/bin/env bash
# Build the container image and smoke-test it (used by .ci/run).
#
# Exit 0 with "SKIP container image: REASON" when this machine cannot build images (no
# podman, no base image obtainable); exit 1 when the build or the smoke test fails.
# The base image is python:3.11-slim-bookworm from the registry when it can be pulled,
# otherwise a Debian 12 made with debootstrap from Debian's own mirror (kept as
# localhost/leakguard-base:bookworm for the next run).
set -euo pipefail
cd "$(dirname "$0")/../.."
TAG=${LEAKGUARD_IMAGE_TAG:-localhost/leakguard:ci}

skip() { echo "SKIP container image: $*"; exit 0; }
cleanup=()
trap 'rm -rf "${cleanup[@]}"' EXIT

command -v podman >/dev/null 2>&1 || skip "podman is not installed (apt-get install podman)"

# podman in a restricted container: build steps run chrooted (no OCI runtime, no cgroups),
# with ulimits the sandbox lets us set
BUILD=(podman build --format docker --isolation=chroot --ulimit nofile=1024:1024 --ulimit nproc=1000:1000)

base=""
if timeout 60 podman pull -q docker.io/library/python:3.11-slim-bookworm >/dev/null 2>&1; then
  base=docker.io/library/python:3.11-slim-bookworm
elif podman image exists localhost/leakguard-base:bookworm; then
  base=localhost/leakguard-base:bookworm
elif command -v debootstrap >/dev/null 2>&1; then
  echo "no registry image reachable: building a Debian 12 base with debootstrap"
  root=$(mktemp -d /tmp/leakguard-rootfs.XXXXXX)
  cleanup+=("$root")
  mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n1)
  if timeout 900 debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
      bookworm "$root" "${mirror:-http://deb.debian.org/debian}" >/tmp/leakguard-debootstrap.log 2>&1; then
    tar -C "$root" -c . | podman import -q - localhost/leakguard-base:bookworm >/dev/null
    base=localhost/leakguard-base:bookworm
  else
    skip "no base image: the registry is unreachable and debootstrap failed (/tmp/leakguard-debootstrap.log)"
  fi
else
  skip "no base image: the registry is unreachable and debootstrap is not installed"
fi

# pip inside the build trusts the same CA bundle as this host (TLS-inspecting proxies)
ca=""
for f in "${PIP_CERT:-}" /etc/ssl/certs/ca-certificates.crt; do
  if [ -n "$f" ] && [ -f "$f" ]; then ca=$f; break; fi
done
extra=()
if [ -n "$ca" ]; then
  extra=(-v "$ca:/run/host-ca.crt:ro" --build-arg PIP_CERT=/run/host-ca.crt)
fi

# the build context: a copy of what the image needs, so that .ci/run may rebuild .venv in
# the checkout meanwhile
ctx=$(mktemp -d /tmp/leakguard-context.XXXXXX)
cleanup+=("$ctx")
tar -c --exclude=__pycache__ pyproject.toml README.md LICENSE leakguard policies \
  deploy/container/leakguard.yaml | tar -C "$ctx" -x

echo "building $TAG from $base"
"${BUILD[@]}" "${extra[@]}" --build-arg BASE="$base" -f deploy/container/Containerfile \
  -t "$TAG" "$ctx"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
echo "smoke-testing $TAG"
"${BUILD[@]}" --no-cache --build-arg IMAGE="$TAG" --build-arg SMTP_PORT="$(free_port)" \
  --build-arg WEB_PORT="$(free_port)" -f deploy/container/smoke.Containerfile \
  -t localhost/leakguard-smoke:ci deploy/container
podman rmi -f localhost/leakguard-smoke:ci >/dev/null 2>&1 || true
# what the image promises: non-root user, a volume, a health check
promises=$(podman image inspect "$TAG" \
  --format '{{.Config.User}} {{.Config.Volumes}} {{.Config.Healthcheck.Test}}')
echo "image config: $promises"
case "$promises" in
  "10025:10025 map[/var/lib/leakguard:{}] [CMD /opt/leakguard/bin/python"*) ;;
  *) echo "the image lost its user, volume or health check" >&2; exit 1 ;;
esac
echo "container image: built and smoke-tested ($TAG)"
