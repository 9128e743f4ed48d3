#!/usr/bin/env bash
# Runs every check of the project: the one command CI and contributors use.
#
#   bash scripts/test.sh              # every stage
#   bash scripts/test.sh test fuzz    # only the named stages (after packages and toolchain)
#
# Works as root on a fresh Debian 12 machine that has only the Rust toolchain: missing Debian
# packages are installed with apt-get, cargo-fuzz and cargo-deny with cargo. Stops at the first failure with a
# non-zero exit status and names the stage that failed.
#
# Environment:
#   FUZZ_SECONDS      seconds each fuzz target runs (default 20)
#   CARGO_TARGET_DIR  the one target directory shared by all cargo steps (default ./target)
#   CARGO_INCREMENTAL incremental compilation (default 0: one build per run)
#   MYNACARD_PRUNE_TARGET=1  delete the dev build before the fuzz build (.ci/run sets it: a
#                     CI machine's disk may not hold both)

set -Eeuo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# One build per run: incremental caches only cost disk (tens of GB over all test binaries) and time.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
FUZZ_SECONDS="${FUZZ_SECONDS:-20}"

# The Debian packages (TEST_PACKAGES) and their installer.
source "$ROOT/scripts/debian-packages.sh"

CURRENT_STAGE="setup"
STAGE_TIMES=()
FUZZ_REPORT=()

trap 'echo "test.sh: FAILED in stage \"$CURRENT_STAGE\" (exit status $?)" >&2' ERR

log() { printf '==> %s\n' "$*"; }

run_stage() {
    local name="$1"
    shift
    CURRENT_STAGE="$name"
    local start=$SECONDS
    log "[$name]"
    "$@"
    STAGE_TIMES+=("$name $((SECONDS - start))s")
}

stage_packages() {
    ensure_debian_packages "${TEST_PACKAGES[@]}"
}

stage_toolchain() {
    cargo --version
    if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
        rustup component add rustfmt clippy
    fi
    cargo fmt --version
    cargo clippy --version
}

stage_fmt() {
    cargo fmt --all --check
}

stage_clippy() {
    cargo clippy --workspace --all-targets --all-features -- -D warnings
}

stage_test() {
    # The PostgreSQL tests need the cluster (when the stage was not selected explicitly).
    [[ -n "${MYNACARD_TEST_POSTGRES_URL:-}" ]] || stage_postgres
    # The mynacard-pcsc end-to-end tests (feature pcscd-tests) need pcscd with both vpcd slots
    # free; they attach their own simulated cards and fail when pcscd is absent.
    stage_pcscd
    # The fault sweep runs once, in stage_sweep, where its summary is printed.
    cargo test --workspace --all-features -- --skip "$SWEEP_TEST"
    pcsc_env_stop_if_ours
}

# The C ABI from C: the library (feature sim, debug) built, the C ATM example compiled against
# the committed header with warnings as errors and linked to the shared library, then run under
# valgrind; it must exit 0 and print "outcome: registered". Definite and indirect leaks and
# every invalid access fail the stage. "Possibly lost" and "still reachable" blocks do not: they
# are process-lifetime caches that are never freed by design (the simulator's shared test PKI
# and its derived keys, the Rust runtime's thread-locals), so no suppression file is needed and
# a handle the example forgets to free is still caught (as definitely lost).
stage_ffi() {
    local tool dir out
    for tool in cc valgrind; do
        if ! command -v "$tool" >/dev/null; then
            echo "$tool not found (scripts/debian-packages.sh lists its package)" >&2
            return 1
        fi
    done
    cargo build -p mynacard-ffi --features sim
    dir="$(mktemp -d -t mynacard-ffi.XXXXXX)"
    CLEANUPS+=("rm -rf $dir")
    cc -Wall -Werror -std=c11 -I "$ROOT/crates/ffi/include" "$ROOT/examples/c/atm_registration.c" \
        -L "$CARGO_TARGET_DIR/debug" -lmynacard_ffi -Wl,-rpath,"$CARGO_TARGET_DIR/debug" \
        -o "$dir/atm_registration"
    out="$(valgrind --quiet --leak-check=full --show-leak-kinds=definite,indirect \
        --errors-for-leak-kinds=definite,indirect \
        --error-exitcode=1 "$dir/atm_registration")"
    printf '%s\n' "$out"
    if ! grep -qx 'outcome: registered' <<<"$out"; then
        echo "the C example did not print \"outcome: registered\"" >&2
        return 1
    fi
}

# The phone bindings (crates/mobile): the committed Kotlin, Swift and Python bindings must be
# what the generator writes from the built library; then the Python test loads the generated
# module with the `sim` build and registers a simulated card over the NfcTag callback.
stage_mobile() {
    if ! command -v python3 >/dev/null; then
        echo "python3 not found (scripts/debian-packages.sh lists its package)" >&2
        return 1
    fi
    # Builds the app library, then the sim library with the generator, which stays in place.
    bash "$ROOT/crates/mobile/generate.sh" --check
    MYNACARD_MOBILE_LIB="$CARGO_TARGET_DIR/debug/libmynacard_mobile.so" \
        python3 "$ROOT/crates/mobile/tests/python/test_registration.py" -v
}

# The C ABI from C#: the library of stage_ffi (feature sim, debug), the C# kiosk example compiled
# with Mono's mcs with warnings as errors and run under mono; it must exit 0 and print the
# outcome of each flow: the face registration, the eligibility check, and a stranger at the
# camera turned away by the kiosk's face matcher.
stage_csharp() {
    local tool dir out line rc=0
    for tool in mcs mono; do
        if ! command -v "$tool" >/dev/null; then
            echo "$tool not found (scripts/debian-packages.sh lists its package)" >&2
            return 1
        fi
    done
    cargo build -p mynacard-ffi --features sim
    dir="$(mktemp -d -t mynacard-csharp.XXXXXX)"
    CLEANUPS+=("rm -rf $dir")
    mcs -warnaserror -out:"$dir/Kiosk.exe" "$ROOT/examples/csharp/Kiosk.cs"
    out="$(LD_LIBRARY_PATH="$CARGO_TARGET_DIR/debug${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
        mono "$dir/Kiosk.exe")" || rc=$?
    printf '%s\n' "$out"
    if ((rc != 0)); then
        echo "the C# example exited with status $rc" >&2
        return 1
    fi
    for line in 'registration outcome: registered' 'eligibility outcome: eligible' \
        'stranger outcome: face_not_matched' 'kiosk: done'; do
        if ! grep -qxF "$line" <<<"$out"; then
            echo "the C# example did not print \"$line\"" >&2
            return 1
        fi
    done
}

# The fault sweep (crates/registration/tests/fault_sweep.rs): every card flow and registration
# channel with the card pulled, reset, a byte corrupted and an answer late at every APDU, and
# every HTTP fault at every request; prints its summary (flows x faults x indexes) and fails on
# any violation (known findings, listed in the summary, fail it once they no longer occur).
# The features of stage_test, so its build is reused.
SWEEP_TEST=every_flow_survives_a_fault_at_every_apdu_and_every_request
stage_sweep() {
    local out
    out="$(mktemp)"
    cargo test --workspace --all-features --test fault_sweep -- --nocapture --test-threads 1 \
        2>&1 | tee "$out"
    # The summary was printed, with no violation.
    if ! grep -Eq '^total: [0-9]+ cases, [0-9]+ held, 0 violations' "$out"; then
        rm -f "$out"
        echo "the fault sweep printed no summary without violations" >&2
        return 1
    fi
    rm -f "$out"
}

# pcscd without cards for the tests above. An already running pcscd is used as it is (the tests
# then need its vpcd slots free); one started here is stopped by pid right after the tests.
PCSCD_STARTED_HERE=0
stage_pcscd() {
    # shellcheck source=scripts/pcsc-env.sh
    source "$ROOT/scripts/pcsc-env.sh"
    if [[ -f /run/pcscd/pcscd.pid ]] && kill -0 "$(tr -d '\0' </run/pcscd/pcscd.pid)" 2>/dev/null; then
        echo "using the running pcscd (pid $(tr -d '\0' </run/pcscd/pcscd.pid))"
        return 0
    fi
    PCSCD_STARTED_HERE=1
    CLEANUPS+=("pcsc_env_stop_if_ours")
    pcsc_env_start --no-cards
}
pcsc_env_stop_if_ours() {
    if [[ "$PCSCD_STARTED_HERE" == 1 ]]; then
        pcsc_env_stop
        PCSCD_STARTED_HERE=0
    fi
}

# The OpenSC must-show checks against simulated cards behind the real pcscd + vpcd: the reader
# lists the card, pkcs15-tool lists the JPKI certificates, a pkcs11-tool signature with the
# authentication key verifies with openssl (scripts/opensc-check.sh). Needs both vpcd slots.
stage_opensc() {
    # shellcheck source=scripts/pcsc-env.sh
    source "$ROOT/scripts/pcsc-env.sh"
    cargo build -q -p mynacard-cli
    export MYNACARD_BIN="$CARGO_TARGET_DIR/debug/mynacard"
    CLEANUPS+=("pcsc_env_stop")
    pcsc_env_start --second
    bash "$ROOT/scripts/opensc-check.sh"
    pcsc_env_stop
}

# The registry's load benchmark in its short, bounded mode, on SQLite and on the PostgreSQL of
# stage_postgres; prints requests/s, p50/p99 and the service's CPU time per request. (Dev
# profile: the figures are lower than a release build's; the registry README has release ones.)
stage_load() {
    [[ -n "${MYNACARD_TEST_POSTGRES_URL:-}" ]] || stage_postgres
    # The benchmark and the program it starts use the simulator's test roots (feature dev-sim).
    cargo build -p mynacard-registry --features dev-sim --bins --examples
    "$CARGO_TARGET_DIR/debug/examples/load" --short
    "$CARGO_TARGET_DIR/debug/examples/load" --short --db "$MYNACARD_TEST_POSTGRES_URL"
}

# The generated performance report (docs/performance.md) in its short mode on the debug build:
# the command runs end to end, and the committed report's tables have this run's rows.
stage_report() {
    [[ -n "${MYNACARD_TEST_POSTGRES_URL:-}" ]] || stage_postgres
    cargo build -p mynacard-perf -p mynacard-cli
    cargo build -p mynacard-registry --features dev-sim --bins --examples
    local out
    out="$(mktemp -d -t mynacard-report.XXXXXX)"
    CLEANUPS+=("rm -rf $out")
    "$CARGO_TARGET_DIR/debug/mynacard-perf" report --short --out "$out/performance.md" \
        --svg "$out/performance.svg" --check "$ROOT/docs/performance.md" \
        --postgres "$MYNACARD_TEST_POSTGRES_URL"
}

stage_doc() {
    RUSTDOCFLAGS=-Dwarnings cargo doc --workspace --no-deps
    # As docs.rs builds them: every feature, with `--cfg docsrs`.
    RUSTDOCFLAGS="-Dwarnings --cfg docsrs" cargo doc --workspace --no-deps --all-features \
        --exclude mynacard-workspace-examples
}

# Every crate meant for publication packs and builds from its own package (the packages
# depend on each other through a local registry, as on crates.io).
stage_package() {
    cargo package --workspace --exclude mynacard-workspace-examples --exclude mynacard-perf --locked
}

# What the workspace may depend on (deny.toml): licences, banned versions, sources.
stage_deny() {
    if ! cargo deny --version >/dev/null 2>&1; then
        log "installing cargo-deny"
        cargo install cargo-deny --locked
    fi
    cargo deny --log-level error check licenses bans sources
}

# Services for end-to-end tests start here, each as its own stage placed before stage_test and
# stopped from an EXIT trap:
#   - "start pcscd + virtual cards" (pcscd with vsmartcard vpcd and the simulated card)
#   - "start PostgreSQL" (a throwaway cluster on loopback for the reference service)

# Cleanups run at exit, last registered first; each service stage adds its own.
CLEANUPS=()
run_cleanups() {
    local i
    for ((i = ${#CLEANUPS[@]} - 1; i >= 0; i--)); do
        eval "${CLEANUPS[i]}" || true
    done
}
trap run_cleanups EXIT

# A private PostgreSQL cluster in a temporary directory, on a free loopback port, for the
# registry's PostgreSQL tests (feature postgres-tests) and load benchmark. Only this cluster is
# ever started or stopped; its URL goes to the tests in MYNACARD_TEST_POSTGRES_URL.
stage_postgres() {
    local bin port dir as_pg=()
    bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
    if [[ -z "$bin" || ! -x "$bin/initdb" ]]; then
        echo "PostgreSQL server binaries not found under /usr/lib/postgresql" >&2
        return 1
    fi
    dir="$(mktemp -d -t mynacard-pg.XXXXXX)"
    if [[ "$(id -u)" == 0 ]]; then
        chown postgres "$dir"
        as_pg=(runuser -u postgres --)
    fi
    for port in $(shuf -i 20000-60000 -n 20); do
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            break
        fi
    done
    "${as_pg[@]}" "$bin/initdb" -D "$dir/data" -A trust -U postgres >/dev/null
    CLEANUPS+=("${as_pg[*]} $bin/pg_ctl -D $dir/data -m fast -w stop >/dev/null; rm -rf $dir")
    "${as_pg[@]}" "$bin/pg_ctl" -D "$dir/data" -o "-k $dir -p $port -h 127.0.0.1" -l "$dir/log" -w start
    export MYNACARD_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
    echo "PostgreSQL on 127.0.0.1:$port ($dir)"
}

stage_fuzz() {
    if ! cargo fuzz --version >/dev/null 2>&1; then
        log "installing cargo-fuzz"
        cargo install cargo-fuzz --locked
    fi
    # libFuzzer needs nightly-only compiler flags; RUSTC_BOOTSTRAP lets the stable toolchain
    # accept them for this build only. fuzz/ has its own target directory (other flags).
    local targets
    mapfile -t targets < <(cargo fuzz list)
    if ((${#targets[@]} == 0)); then
        echo "no fuzz targets" >&2
        return 1
    fi
    if [[ "${MYNACARD_PRUNE_TARGET:-0}" == 1 && -d "$CARGO_TARGET_DIR/debug" ]]; then
        echo "pruning the dev build ($(du -sh "$CARGO_TARGET_DIR/debug" | cut -f1)): no stage after this one uses it"
        rm -rf "$CARGO_TARGET_DIR/debug"
    fi
    RUSTC_BOOTSTRAP=1 cargo fuzz build
    local target out runs secs
    local -a corpora
    for target in "${targets[@]}"; do
        log "fuzz $target for ${FUZZ_SECONDS}s"
        # The first directory is the working corpus; the others are read-only seeds: inputs that
        # are known to parse (committed seeds, the J-LIS roots, a real card's certificate), so
        # a short run starts deep inside the format instead of at the first byte.
        corpora=("$ROOT/fuzz/corpus/$target")
        mkdir -p "${corpora[0]}"
        [[ -d "$ROOT/fuzz/seeds/$target" ]] && corpora+=("$ROOT/fuzz/seeds/$target")
        if [[ "$target" == cert_parse ]]; then
            corpora+=("$ROOT/crates/cert/roots" "$ROOT/crates/cert/tests/fixtures/real-card")
        fi
        if [[ "$target" == card_records || "$target" == recorded_image ]]; then
            # A real test card's records, certificates and CVCs, and its image description.
            corpora+=("$ROOT/crates/sim/images/jlis-test-card")
        fi
        out="$(mktemp)"
        if ! RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" "${corpora[@]}" -- -max_total_time="$FUZZ_SECONDS" >"$out" 2>&1; then
            tail -n 60 "$out" >&2
            rm -f "$out"
            return 1
        fi
        # libFuzzer's last line: "Done <runs> runs in <secs> second(s)".
        read -r runs secs < <(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\1 \2/p' "$out" | tail -n 1) || true
        rm -f "$out"
        runs="${runs:-0}"
        secs="${secs:-0}"
        if ((secs > 0)); then
            FUZZ_REPORT+=("$target: $runs runs, $((runs / secs)) exec/s")
        else
            FUZZ_REPORT+=("$target: $runs runs")
        fi
        echo "${FUZZ_REPORT[-1]}"
    done
}

# The stages in order. Each name maps to the function stage_<name>.
STAGES=(packages toolchain fmt clippy postgres test sweep ffi mobile csharp opensc load report doc package deny fuzz)

main() {
    local start=$SECONDS selected=("${STAGES[@]}") stage
    # Naming stages runs only those (after packages and toolchain): bash scripts/test.sh test fuzz
    if (($# > 0)); then
        for stage in "$@"; do
            if [[ ! " ${STAGES[*]} " =~ " $stage " ]]; then
                echo "unknown stage \"$stage\"; stages: ${STAGES[*]}" >&2
                exit 2
            fi
        done
        selected=(packages toolchain "$@")
    fi
    mkdir -p "$CARGO_TARGET_DIR"
    log "disk: $(df -h --output=avail "$CARGO_TARGET_DIR" | tail -n 1 | tr -d ' ') available for $CARGO_TARGET_DIR"
    for stage in "${selected[@]}"; do
        run_stage "$stage" "stage_$stage"
    done
    CURRENT_STAGE="summary"
    echo
    # Disk is the scarcest resource of a CI machine: say what this run used.
    echo "  disk  target directory $(du -sh "$CARGO_TARGET_DIR" 2>/dev/null | cut -f1), $(df -h --output=avail "$CARGO_TARGET_DIR" | tail -n 1 | tr -d ' ') left"
    if ((${#FUZZ_REPORT[@]} > 0)); then
        printf '  fuzz  %s\n' "${FUZZ_REPORT[@]}"
    fi
    printf '  stage %s\n' "${STAGE_TIMES[@]}"
    if (($# > 0)); then
        echo "test.sh: PASSED the selected stages (${#STAGE_TIMES[@]} in $((SECONDS - start))s)"
    else
        echo "test.sh: ALL PASSED (${#STAGE_TIMES[@]} stages in $((SECONDS - start))s)"
    fi
}

main "$@"
