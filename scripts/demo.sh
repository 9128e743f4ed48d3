#!/usr/bin/env bash
# The project's main job, as far as it works today: build the `mynacard` command and walk through
# the card side of a health-insurance-use registration (read the authentication certificate,
# check the PIN's remaining tries, verify the PIN, sign the service's challenge), explaining each
# command APDU and the card's answer with `mynacard apdu decode`.
#
#   bash scripts/demo.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

cargo build --quiet -p mynacard-cli
MYNACARD="$CARGO_TARGET_DIR/debug/mynacard"

step() {
    local title="$1" command="$2" answer="$3"
    printf '\n### %s\n' "$title"
    "$MYNACARD" apdu decode "$command"
    "$MYNACARD" apdu decode "$answer"
}

# SHA-256 DigestInfo of the service's challenge (here: the hash of the empty string).
DIGEST_INFO="3031300D060960864801650304020105000420E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"

step "Select the JPKI application"          "00A4040C0AD392F000260100000001" "9000"
step "Select the authentication certificate" "00A4020C02000A"                 "9000"
step "Read its DER header (7 bytes)"         "00B0000007"                     "308206A53082059000"
step "Read the rest, 256 bytes at a time"    "00B0000700"                     "9000"
step "Select the authentication PIN"         "00A4020C020018"                 "9000"
step "Ask the remaining tries (spends none)" "00200080"                       "63C3"
step "Verify the PIN (never printed)"        "002000800431323334"             "9000"
step "Select the authentication key"         "00A4020C020017"                 "9000"
step "Sign the challenge"                    "802A008033${DIGEST_INFO}00"     "6100"
step "Fetch the 256-byte signature"          "00C0000000"                     "9000"

printf '\nA wrong PIN instead would answer:\n'
"$MYNACARD" apdu decode 63C2
