#!/usr/bin/env bash
# A real PC/SC stack with simulated My Number Cards: pcscd, vsmartcard's vpcd reader driver, and
# `mynacard sim vpcd` on slot 0 (port 35963, "Virtual PCD 00 00") and optionally slot 1 (35964).
#
#   scripts/pcsc-env.sh start [--second]   install what is missing (as root), start everything,
#                                          wait until pcscd reports the card(s) inserted
#   scripts/pcsc-env.sh start --no-cards   pcscd only, both vpcd slots left free (the
#                                          mynacard-pcsc end-to-end tests attach their own cards)
#   scripts/pcsc-env.sh stop               stop the cards and pcscd (by pid)
#   scripts/pcsc-env.sh status             show readers and cards
#
# Sourcing the file defines pcsc_env_start / pcsc_env_stop / pcsc_env_status instead.
#
# Environment:
#   MYNACARD_BIN     the mynacard binary          (default: target/debug/mynacard, built if missing)
#   SIM_PROFILE      profile of the card on slot 0 (default: adult)
#   SIM_PROFILE_2    profile of the card on slot 1 (default: under15)
#   PCSC_ENV_DIR     pid files and logs            (default: /tmp/mynacard-pcsc-env)
#   PCSCD_DEBUG=1    run pcscd with --debug --apdu (every APDU in pcscd.log)
#
# pcscd is started in the foreground, in the background, by pid, without --auto-exit (which would
# stop it after 60 idle seconds). Nothing is ever killed by name.

PCSC_ENV_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PCSC_ENV_DIR="${PCSC_ENV_DIR:-/tmp/mynacard-pcsc-env}"
PCSC_ENV_PACKAGES=(pcscd libpcsclite-dev pkg-config vsmartcard-vpcd opensc pcsc-tools)

pcsc_env_log() { echo "pcsc-env: $*" >&2; }

pcsc_env_install() {
  local missing=()
  local pkg
  for pkg in "${PCSC_ENV_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    pcsc_env_log "missing packages (${missing[*]}) and not root: install them first"
    return 1
  fi
  pcsc_env_log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >"$PCSC_ENV_DIR/apt.log" 2>&1 \
    || { cat "$PCSC_ENV_DIR/apt.log" >&2; return 1; }
}

pcsc_env_bin() {
  local bin="${MYNACARD_BIN:-$PCSC_ENV_ROOT/target/debug/mynacard}"
  if [ ! -x "$bin" ]; then
    pcsc_env_log "building $bin"
    (cd "$PCSC_ENV_ROOT" && cargo build -q -p mynacard-cli) >&2 || return 1
  fi
  echo "$bin"
}

# Number of readers pcsc_scan reports with a card inserted.
pcsc_env_inserted() {
  timeout 5 pcsc_scan -c 2>/dev/null | grep -c 'Card inserted' || true
}

pcsc_env_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

pcsc_env_pid() { [ -f "$PCSC_ENV_DIR/$1.pid" ] && cat "$PCSC_ENV_DIR/$1.pid"; }

# Starts one simulated card on a vpcd port; $1 = slot name, $2 = port, $3 = profile.
pcsc_env_card() {
  local name="$1" port="$2" profile="$3" bin
  bin="$(pcsc_env_bin)" || return 1
  "$bin" sim vpcd --port "$port" --profile "$profile" --connect-timeout 10 \
    >"$PCSC_ENV_DIR/$name.log" 2>&1 &
  echo $! >"$PCSC_ENV_DIR/$name.pid"
}

pcsc_env_start() {
  local second=0 cards=1
  [ "${1:-}" = "--second" ] && second=1
  [ "${1:-}" = "--no-cards" ] && cards=0
  mkdir -p "$PCSC_ENV_DIR"
  pcsc_env_install || return 1

  if pcsc_env_alive "$(pcsc_env_pid pcscd)"; then
    pcsc_env_log "already running (pcscd pid $(pcsc_env_pid pcscd)); stop it first"
    return 1
  fi
  if [ -f /run/pcscd/pcscd.pid ]; then
    local old
    old="$(tr -d '\0' </run/pcscd/pcscd.pid)"
    if pcsc_env_alive "$old"; then
      pcsc_env_log "another pcscd is running (pid $old); not starting a second one"
      return 1
    fi
  fi

  local started=$SECONDS
  local flags=(--foreground)
  [ "${PCSCD_DEBUG:-0}" = 1 ] && flags+=(--debug --apdu)
  pcscd "${flags[@]}" >"$PCSC_ENV_DIR/pcscd.log" 2>&1 &
  echo $! >"$PCSC_ENV_DIR/pcscd.pid"

  # Ready when its socket exists and vpcd's slot 0 listens. Never probe 35963 with a plain
  # connect: vpcd would take the probe for a card.
  local _
  for _ in $(seq 1 100); do
    [ -S /run/pcscd/pcscd.comm ] && ss -ltn | grep -q ':35963 ' && break
    sleep 0.05
  done
  if ! ss -ltn | grep -q ':35963 '; then
    pcsc_env_log "pcscd did not become ready"; cat "$PCSC_ENV_DIR/pcscd.log" >&2
    pcsc_env_stop; return 1
  fi

  if [ "$cards" = 0 ]; then
    pcsc_env_log "ready in $((SECONDS - started)) s: pcscd pid $(pcsc_env_pid pcscd), no cards"
    return 0
  fi
  pcsc_env_card card0 35963 "${SIM_PROFILE:-adult}" || { pcsc_env_stop; return 1; }
  local want=1
  if [ "$second" = 1 ]; then
    pcsc_env_card card1 35964 "${SIM_PROFILE_2:-under15}" || { pcsc_env_stop; return 1; }
    want=2
  fi
  # "TCP connected" is not "inserted": wait until pcscd reports the card(s).
  for _ in $(seq 1 200); do
    [ "$(pcsc_env_inserted)" -ge "$want" ] && break
    sleep 0.05
  done
  if [ "$(pcsc_env_inserted)" -lt "$want" ]; then
    pcsc_env_log "card not inserted after 10 s"
    cat "$PCSC_ENV_DIR"/card*.log "$PCSC_ENV_DIR/pcscd.log" >&2
    pcsc_env_stop; return 1
  fi
  pcsc_env_log "ready in $((SECONDS - started)) s: pcscd pid $(pcsc_env_pid pcscd), $want card(s) inserted"
}

# Sends TERM to a pid from a pid file and waits up to $2 seconds for it to exit.
pcsc_env_kill() {
  local name="$1" wait_s="$2" pid _
  pid="$(pcsc_env_pid "$name")" || return 0
  if pcsc_env_alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 $((wait_s * 20))); do
      pcsc_env_alive "$pid" || break
      sleep 0.05
    done
    if pcsc_env_alive "$pid"; then
      pcsc_env_log "$name ($pid) did not stop; sending KILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.2
    fi
  fi
  rm -f "$PCSC_ENV_DIR/$name.pid"
}

pcsc_env_stop() {
  pcsc_env_kill card0 3
  pcsc_env_kill card1 3
  # pcscd takes 1.3-2 s to stop.
  pcsc_env_kill pcscd 10
}

pcsc_env_status() {
  timeout 5 pcsc_scan -c 2>&1 || true
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  case "${1:-}" in
    start) shift; pcsc_env_start "$@" ;;
    stop) pcsc_env_stop ;;
    status) pcsc_env_status ;;
    *) echo "usage: $0 start [--second | --no-cards] | stop | status" >&2; exit 2 ;;
  esac
fi
