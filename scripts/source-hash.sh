#!/usr/bin/env bash
# The SHA-256 of the files the envfence binary is built from (Cargo.toml, Cargo.lock, src/,
# policies/), one hash over the sorted per-file hashes. The release publishes it as
# envfence-source.sha256; the GitHub Action compares it with its own source to tell a released
# commit (fast path: the release binary) from an unreleased one (build from source), and keys
# its build cache on it.
set -euo pipefail
cd "$(dirname "$0")/.."
sum=(sha256sum)
command -v sha256sum >/dev/null 2>&1 || sum=(shasum -a 256)
find Cargo.toml Cargo.lock src policies -type f -print0 | LC_ALL=C sort -z \
  | xargs -0 "${sum[@]}" | "${sum[@]}" | cut -c1-64
