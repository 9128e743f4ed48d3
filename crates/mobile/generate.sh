#!/usr/bin/env bash
# Writes the committed bindings of mynacard-mobile from the built library (UniFFI library
# mode), or checks them:
#
#   bash crates/mobile/generate.sh           # regenerate bindings/{kotlin,swift,python}
#   bash crates/mobile/generate.sh --check   # fail when the committed bindings are stale
#
# Kotlin and Swift come from the app build (no features): their checksum checks must match a
# library without the test aids. Python comes from the `sim` build, whose test aids the Python
# test uses. Uses CARGO_TARGET_DIR (default: the workspace's target/).

set -Eeuo pipefail

CRATE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$CRATE/../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

check=0
case "${1:-}" in
    "") ;;
    --check) check=1 ;;
    *)
        echo "usage: $0 [--check]" >&2
        exit 2
        ;;
esac

case "$(uname -s)" in
    Darwin) lib=libmynacard_mobile.dylib ;;
    *) lib=libmynacard_mobile.so ;;
esac

work="$(mktemp -d -t mynacard-mobile-bindings.XXXXXX)"
trap 'rm -rf "$work"' EXIT

cd "$ROOT"
# Two builds, both writing the same file name, so each library is copied aside. The sim build
# comes last, with the generator, and stays in place for the Python test.
cargo build -p mynacard-mobile --lib
mkdir "$work/app" "$work/sim"
cp "$CARGO_TARGET_DIR/debug/$lib" "$work/app/$lib"
cargo build -p mynacard-mobile --features sim,bindgen
cp "$CARGO_TARGET_DIR/debug/$lib" "$work/sim/$lib"
cp "$CARGO_TARGET_DIR/debug/uniffi-bindgen" "$work/uniffi-bindgen"

out="$work/bindings"
generate() { # LIBRARY LANGUAGE
    (cd "$CRATE" && "$work/uniffi-bindgen" generate --no-format --language "$2" \
        --out-dir "$out/$2" "$1")
}
generate "$work/app/$lib" kotlin
generate "$work/app/$lib" swift
generate "$work/sim/$lib" python

if ((check)); then
    if ! diff -ru "$CRATE/bindings" "$out"; then
        echo "the committed bindings are stale: run bash crates/mobile/generate.sh" >&2
        exit 1
    fi
    echo "bindings are fresh"
else
    rm -rf "$CRATE/bindings"
    cp -r "$out" "$CRATE/bindings"
    echo "wrote $CRATE/bindings"
fi
