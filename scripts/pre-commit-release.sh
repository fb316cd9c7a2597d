#!/usr/bin/env bash
# The `envfence-release` pre-commit hook: runs the release binary of the hook's own version
# (the `version` of Cargo.toml at the `rev` your .pre-commit-config.yaml pins), downloaded once
# into ~/.cache/envfence/<version>/ by scripts/install-release.sh (SHA-256 and, with gh on
# PATH, build provenance checked). Arguments are envfence's (`scan --quiet`).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$here/../Cargo.toml" | head -n1)
[ -n "$version" ] || { echo "envfence hook: no version in $here/../Cargo.toml" >&2; exit 2; }
dir="${XDG_CACHE_HOME:-$HOME/.cache}/envfence/$version"
bin="$dir/envfence"
[ -x "$bin" ] || [ -x "$bin.exe" ] || {
  # Without gh the SHA-256 is checked alone, and the hook says so.
  command -v gh >/dev/null 2>&1 || export ENVFENCE_ATTESTATION=${ENVFENCE_ATTESTATION:-skip}
  "$here/install-release.sh" "$version" "$dir"
}
[ -x "$bin" ] || bin="$bin.exe"
exec "$bin" "$@"
