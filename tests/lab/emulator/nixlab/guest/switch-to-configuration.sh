#!/bin/sh
# switch-to-configuration stand-in for @system@: activate, then restart the stand-in services.
PATH=@busybox@/bin
case "${1-}" in
  test|switch) ;;
  boot|dry-activate) exit 0 ;;
  *) echo "Usage: $0 [switch|boot|test|dry-activate]" >&2; exit 1 ;;
esac
@system@/activate
# The guest's networking (NixOS's network-setup and network-addresses-* units): a failure is a
# failed unit, so the switch ends with status 4 as NixOS's does.
result=0
@system@/bin/lab-network || result=4
state=/run/nixos-lab-guest

stop_service() {
  pid=$(cat "$1" 2>/dev/null || true)
  rm -f "$1"
  [ -n "$pid" ] || return 0
  kill "$pid" 2>/dev/null || true
  # Wait until the listener is gone (a zombie no longer holds its port).
  for _ in $(seq 100); do
    [ -d "/proc/$pid" ] || break
    grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null && break
    sleep 0.05
  done
}

start_listener() {
  setsid nc -ll -p "$2" -e "$3" </dev/null >/dev/null 2>&1 &
  echo $! > "$state/$1.pid"
}

for pidfile in "$state"/*.pid; do
  [ -e "$pidfile" ] && stop_service "$pidfile"
done
while read -r service; do
  case "$service" in
    http) start_listener http 80 @system@/bin/lab-http ;;
    ssh) start_listener ssh 22 @system@/bin/lab-ssh ;;
  esac
done < @system@/lab-services
exit "$result"
