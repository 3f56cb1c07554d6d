#!/usr/bin/env bash
# Makes sure the Debian packages the project needs are present:
#   espeak-ng  synthesises the embedded corpora
#   fortunes   real English sentences for its transcripts
# and the text packages of the multilingual corpus (sb-sparse synth --preset ml_*;
# speechbrain_sparse/data/languages.py):
#   fortunes-de fortunes-es fortunes-it fortunes-pl fortunes-br  German, Spanish,
#                                        Italian, Polish, Portuguese fortunes
#   manpages-fr manpages-nl              French and Dutch (no fortunes in Debian)
# Installs what is missing with apt-get when running as root. Otherwise a missing
# required package is an error naming it, and a missing text package a warning
# (the English corpus does not need them).
set -euo pipefail

FORTUNES=/usr/share/games/fortunes
missing=()
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
[ -f "$FORTUNES/fortunes" ] || missing+=(fortunes)
optional=()
for package_path in fortunes-de:de fortunes-es:es fortunes-it:it fortunes-pl:pl \
    fortunes-br:brasil; do
  [ -e "$FORTUNES/${package_path#*:}" ] || optional+=("${package_path%%:*}")
done
for language in fr nl; do
  [ -d "/usr/share/man/$language/man1" ] || optional+=("manpages-$language")
done
[ $((${#missing[@]} + ${#optional[@]})) -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing Debian packages: ${missing[*]} ${optional[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  if [ ${#missing[@]} -gt 0 ]; then
    apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  if [ ${#optional[@]} -gt 0 ]; then
    # the English corpus does not need them: a failure here is a warning
    apt-get install -y -qq "${optional[@]}" >/dev/null || echo "warning: could" \
      "not install ${optional[*]}; the multilingual corpus needs them" >&2
  fi
  exit 0
fi
if [ ${#optional[@]} -gt 0 ]; then
  echo "warning: the multilingual corpus (sb-sparse synth --preset ml_*) needs" \
    "the Debian packages ${optional[*]}: sudo apt-get install ${optional[*]}" >&2
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "error: missing system packages: ${missing[*]}" >&2
  echo "Install them with: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
