#!/usr/bin/env bash
# Installs a released envfence binary for this machine: downloads the release archive of
# VERSION, checks its SHA-256 against the release's checksum file and (unless told not to) its
# build provenance with `gh attestation verify`, then unpacks the binary into DIR.
#
#   scripts/install-release.sh VERSION DIR [SOURCE_HASH]
#
# SOURCE_HASH (from scripts/source-hash.sh): install only when the release was built from these
# very sources; the GitHub Action passes it so that an unreleased commit builds from source.
#
# Environment:
#   ENVFENCE_RELEASES     where releases are (default https://github.com/envfence/envfence/releases/download);
#                         the tests point it at a file:// folder
#   ENVFENCE_ATTESTATION  `require` (default): `gh attestation verify` must pass (needs gh and
#                         GH_TOKEN); `skip`: the SHA-256 alone is checked
#   ENVFENCE_TARGET       the Rust target triple to download (default: this machine's)
#
# Exit codes: 0 installed; 3 this version has no release for this platform or these sources
# (build from source instead); 1 anything else, a failed check above all: never fall back on it.
set -euo pipefail

repo=envfence/envfence
releases=${ENVFENCE_RELEASES:-https://github.com/$repo/releases/download}
version=${1:?usage: install-release.sh VERSION DIR [SOURCE_HASH]}
dir=${2:?usage: install-release.sh VERSION DIR [SOURCE_HASH]}
source_hash=${3:-}
version=${version#v}
fail() { echo "envfence install: $*" >&2; exit 1; }
unreleased() { echo "envfence install: $*" >&2; exit 3; }

[[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$ ]] || fail "'$version' is not a version"

if [ -n "${ENVFENCE_TARGET:-}" ]; then
  target=$ENVFENCE_TARGET
else
  case "$(uname -s)-$(uname -m)" in
    Linux-x86_64) target=x86_64-unknown-linux-musl ;;
    Linux-aarch64 | Linux-arm64) target=aarch64-unknown-linux-musl ;;
    Darwin-x86_64) target=x86_64-apple-darwin ;;
    Darwin-arm64) target=aarch64-apple-darwin ;;
    MINGW*-x86_64 | MSYS*-x86_64 | CYGWIN*-x86_64) target=x86_64-pc-windows-msvc ;;
    *) unreleased "no release binary for $(uname -s) $(uname -m)" ;;
  esac
fi
case "$target" in
  *-windows-*) archive="envfence-$target.zip" exe=envfence.exe ;;
  *) archive="envfence-$target.tar.gz" exe=envfence ;;
esac

sum=(sha256sum)
command -v sha256sum >/dev/null 2>&1 || sum=(shasum -a 256)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
base="$releases/v$version"
fetch() { curl --proto '=https,file' --tlsv1.2 -fsSL --retry 3 -o "$work/$1" "$base/$1"; }

# The checksum file comes first: when it is missing, so is the release (or this platform's
# build of it).
fetch "envfence-$target.sha256" 2>/dev/null || unreleased "no release v$version for $target at $base"
if [ -n "$source_hash" ]; then
  fetch envfence-source.sha256 2>/dev/null || unreleased "release v$version does not say which sources it was built from"
  [ "$(tr -d ' \n\r' < "$work/envfence-source.sha256")" = "$source_hash" ] \
    || unreleased "these sources are not those of release v$version (an unreleased commit)"
fi
fetch "$archive" || fail "cannot download $base/$archive"

# The checksum file lists the archive by name; check exactly that line, nothing else.
expected=$(awk -v name="$archive" '$2 == name || $2 == "*" name { print $1 }' "$work/envfence-$target.sha256")
[ -n "$expected" ] || fail "envfence-$target.sha256 does not list $archive"
actual=$("${sum[@]}" "$work/$archive" | cut -d' ' -f1)
[ "$actual" = "$expected" ] || fail "SHA-256 mismatch for $archive: expected $expected, got $actual"

case "${ENVFENCE_ATTESTATION:-require}" in
  skip) echo "envfence install: build provenance not checked (ENVFENCE_ATTESTATION=skip)" >&2 ;;
  require)
    command -v gh >/dev/null 2>&1 || fail "gh is needed to verify the build provenance (or set ENVFENCE_ATTESTATION=skip)"
    gh attestation verify "$work/$archive" --repo "$repo" \
      --signer-workflow "$repo/.github/workflows/release.yml" \
      --source-ref "refs/tags/v$version" >&2 \
      || fail "the build provenance of $archive does not verify"
    ;;
  *) fail "ENVFENCE_ATTESTATION must be require or skip" ;;
esac

mkdir -p "$work/unpacked" "$dir"
case "$archive" in
  *.zip) unzip -q "$work/$archive" "$exe" -d "$work/unpacked" ;;
  *) tar -xzf "$work/$archive" -C "$work/unpacked" "$exe" ;;
esac
mv -f "$work/unpacked/$exe" "$dir/$exe"
chmod +x "$dir/$exe"
echo "envfence install: envfence $version ($target) in $dir" >&2
