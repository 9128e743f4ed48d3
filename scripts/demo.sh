#!/usr/bin/env bash
# The project's main job on this machine: build the `mynacard` command and run `mynacard demo`.
# It starts the reference registration service on an embedded SQLite file (loopback, a free
# port), then registers simulated cards from a smartphone app, an ATM and a face-recognition
# kiosk, and checks eligibility at a clinic with a reissued card. Needs only the Rust toolchain.
#
#   bash scripts/demo.sh            readable summary
#   bash scripts/demo.sh --json     one JSON document
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

cargo build --quiet -p mynacard-cli
exec "$CARGO_TARGET_DIR/debug/mynacard" demo "$@"
