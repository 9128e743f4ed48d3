# The Debian packages the project's scripts need, and the one function that installs them.
# Sourced by scripts/demo.sh and scripts/test.sh; extend these lists, nothing else installs
# system packages.

# Building the `mynacard` command: the PC/SC crate links libpcsclite, found by pkg-config.
BUILD_PACKAGES=(pkg-config libpcsclite-dev)

# Running every test: the build's, pcscd with the virtual reader, OpenSC, PostgreSQL, and the C
# compiler and valgrind for the C ABI's example (stage ffi), Mono's compiler and runtime for the
# C# example (stage csharp).
TEST_PACKAGES=(
    "${BUILD_PACKAGES[@]}"
    pcscd vsmartcard-vpcd opensc pcsc-tools
    postgresql
    gcc libc6-dev valgrind
    mono-mcs mono-runtime
    # The phone bindings' Python test (stage mobile).
    python3
)

# ensure_debian_packages PKG...: installs those not yet installed (apt-get, as root). Without
# root it names what is missing and fails.
ensure_debian_packages() {
    local missing=() pkg
    for pkg in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$pkg")
        fi
    done
    if ((${#missing[@]} == 0)); then
        echo "all Debian packages present: $*"
        return 0
    fi
    if [[ "$(id -u)" != 0 ]]; then
        echo "missing Debian packages (run as root to install them, or: sudo apt-get install ${missing[*]}): ${missing[*]}" >&2
        return 1
    fi
    echo "installing ${missing[*]}"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}
