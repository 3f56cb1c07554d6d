#!/usr/bin/env bash
# Makes sure the Debian packages the project needs are present:
#   espeak-ng  synthesises the embedded corpus
#   fortunes   real English sentences for its transcripts
# Installs them with apt-get when running as root, otherwise says what to install.
set -euo pipefail

missing=()
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
[ -f /usr/share/games/fortunes/fortunes ] || missing+=(fortunes)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "error: missing system packages: ${missing[*]}" >&2
  echo "Install them with: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
