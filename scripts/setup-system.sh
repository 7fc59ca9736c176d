#!/usr/bin/env bash
# Installs the Debian packages the integration tests use for real. Idempotent.
# Without root (or apt) it only reports what is missing: those tests then skip locally,
# and fail under CI=true.
set -euo pipefail
packages=(docker.io docker-registry openssh-server openssh-client debootstrap iproute2 iptables chromium etcd-server)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "system: all packages present (${packages[*]})"
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "system: missing ${missing[*]}; install them as root (apt-get install ${missing[*]})" >&2
  exit 0
fi
echo "system: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
