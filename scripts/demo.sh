#!/usr/bin/env bash
# The project's main job on this machine: build the `mynacard` command and run `mynacard demo`.
# It starts the reference registration service on an embedded SQLite file (loopback, a free
# port), then registers simulated cards from a smartphone app, an ATM and a face-recognition
# kiosk, and checks eligibility at a clinic with a reissued card. Needs the Rust toolchain; the
# Debian packages the build needs (pkg-config, libpcsclite-dev) are installed when missing (as
# root, with apt-get), as scripts/test.sh does.
#
#   bash scripts/demo.sh            readable summary
#   bash scripts/demo.sh --json     one JSON document
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

source "$ROOT/scripts/debian-packages.sh"
ensure_debian_packages "${BUILD_PACKAGES[@]}" >&2

cargo build --quiet -p mynacard-cli
exec "$CARGO_TARGET_DIR/debug/mynacard" demo "$@"
