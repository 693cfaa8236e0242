#!/bin/sh
# NixOS's scripted networking in the guest, as far as the lab applies it: the bridges and their
# ports, each interface up with its addresses and routes, the default gateways, from the
# system's lab-network file (nixlab/guestconfig.py). Run at boot (init) and by
# switch-to-configuration: what the previous system set and this one does not is taken away
# first, and an address or route that is already there counts as set.
PATH=@busybox@/bin
state=/run/nixos-lab-guest/network
mkdir -p /run/nixos-lab-guest

ip_quiet() {
  # `ip ARGS`; failures other than "exists" (an address or route set before) are reported.
  if ! out=$(ip "$@" 2>&1); then
    case $out in
      *"File exists"*) ;;
      *) echo "lab-network: ip $*: $out" >&2; status=1 ;;
    esac
  fi
}

status=0
if [ -e "$state" ]; then
  grep -vxF -f @system@/lab-network "$state" | while read -r kind name value via; do
    case $kind in
      address) ip addr del "$value" dev "$name" 2>/dev/null ;;
      port) ip link set dev "$value" nomaster 2>/dev/null ;;
      bridge) ip link del dev "$name" 2>/dev/null ;;
      route) ip route del "$value" dev "$name" 2>/dev/null ;;
      gateway) ip route del default via "$name" 2>/dev/null ;;
      gateway6) ip -6 route del default via "$name" 2>/dev/null ;;
    esac
  done
fi
while read -r kind name value via; do
  case $kind in
    bridge)
      ip link show dev "$name" >/dev/null 2>&1 || ip_quiet link add name "$name" type bridge
      ip_quiet link set dev "$name" up ;;
    port) ip_quiet link set dev "$value" master "$name"; ip_quiet link set dev "$value" up ;;
    up) ip_quiet link set dev "$name" up ;;
    address) ip_quiet addr add "$value" dev "$name" ;;
    route)
      if [ "$via" = - ]; then ip_quiet route add "$value" dev "$name"
      else ip_quiet route add "$value" via "$via" dev "$name"; fi ;;
    gateway | gateway6)
      family=-4
      [ "$kind" = gateway6 ] && family=-6
      if [ "$value" = - ]; then ip_quiet "$family" route add default via "$name"
      else ip_quiet "$family" route add default via "$name" dev "$value"; fi ;;
  esac
done < @system@/lab-network
cp @system@/lab-network "$state"
exit "$status"
