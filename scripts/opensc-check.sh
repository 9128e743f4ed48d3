#!/usr/bin/env bash
# The OpenSC checks against a simulated card attached with `mynacard sim vpcd` (see
# scripts/pcsc-env.sh): the reader lists the card, pkcs15-tool lists the JPKI certificates, and a
# PKCS#11 signature with the authentication key verifies with openssl against the authentication
# certificate read with pkcs15-tool. Every call runs under `timeout`; any failure stops the script
# with a message and a non-zero status.
#
# Environment: OPENSC_TIMEOUT (seconds per call, default 30), AUTH_PIN (default 1234, the test
# PIN of the built-in profiles).
set -euo pipefail

T="${OPENSC_TIMEOUT:-30}"
PIN="${AUTH_PIN:-1234}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

fail() { echo "opensc-check: FAILED: $*" >&2; exit 1; }
step() { echo "opensc-check: $*" >&2; }
# Runs a command under timeout, keeps its output in $WORK/out, shows how long it took.
run() {
  local started ended
  started=$(date +%s%N)
  if ! timeout "$T" "$@" >"$WORK/out" 2>"$WORK/err"; then
    cat "$WORK/out" "$WORK/err" >&2
    fail "$* (exit status $?)"
  fi
  ended=$(date +%s%N)
  step "  $1 took $(( (ended - started) / 1000000 )) ms"
}

step "1. opensc-tool --list-readers"
run opensc-tool --list-readers
cat "$WORK/out"
grep -Eq '^[0-9]+ +Yes .*Virtual PCD 00 00' "$WORK/out" \
  || fail "no card in Virtual PCD 00 00"
run opensc-tool --reader 0 --name
grep -qx 'jpki' "$WORK/out" || fail "OpenSC does not see a JPKI card: $(cat "$WORK/out")"

step "2. pkcs15-tool --list-certificates"
run pkcs15-tool --reader 0 --list-certificates
cat "$WORK/out"
certs=$(grep -c 'X.509 Certificate' "$WORK/out" || true)
[ "$certs" -ge 3 ] || fail "expected the JPKI certificates, found $certs"
grep -q 'User Authentication Certificate' "$WORK/out" \
  || fail "the authentication certificate is not listed"

step "3. pkcs11-tool signature with the authentication key, verified by openssl"
run pkcs15-tool --reader 0 --read-certificate 01
cp "$WORK/out" "$WORK/auth.pem"
openssl x509 -in "$WORK/auth.pem" -noout -subject >&2 || fail "not a certificate"
openssl x509 -in "$WORK/auth.pem" -noout -pubkey >"$WORK/auth-pub.pem" || fail "no public key"

head -c 4096 /dev/urandom >"$WORK/data"
# RSA-PKCS pads what it is given: give it the SHA-256 DigestInfo of the data.
{ printf '\x30\x31\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01\x05\x00\x04\x20'
  openssl dgst -sha256 -binary "$WORK/data"; } >"$WORK/digest-info"
run pkcs11-tool --login --pin "$PIN" --token-label 'JPKI (User Authentication PIN)' \
  --sign --mechanism RSA-PKCS --id 01 \
  --input-file "$WORK/digest-info" --output-file "$WORK/signature"
[ "$(stat -c %s "$WORK/signature")" -eq 256 ] || fail "signature is not 256 bytes"
openssl dgst -sha256 -verify "$WORK/auth-pub.pem" -signature "$WORK/signature" "$WORK/data" >&2 \
  || fail "openssl does not verify the signature against the authentication certificate"

step "all checks passed"
