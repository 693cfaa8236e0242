#!/bin/sh
# The container-init wrapper of the container@ unit (facts §5.5), for busybox sh.
# An early stop request (SIGRTMIN+3, 37 under glibc) must not be lost.
# By number: busybox ash rejects the names RTMIN+3 and SIGRTMIN+3 ("invalid signal
# specification"), so SC2172's advice cannot be followed under busybox sh.
# shellcheck disable=SC2172
trap 'exit 0' 37
set -e
export PATH=@busybox@/bin

if [ -n "${HOST_ADDRESS-}${LOCAL_ADDRESS-}${HOST_ADDRESS6-}${LOCAL_ADDRESS6-}${HOST_BRIDGE-}${LOCAL_MAC_ADDRESS-}" ]; then
  ip link set host0 name eth0
  if [ -n "${LOCAL_MAC_ADDRESS-}" ]; then
    ip link set dev eth0 address "$LOCAL_MAC_ADDRESS"
  fi
  ip link set dev eth0 up
  if [ -n "${LOCAL_ADDRESS-}" ]; then
    ip addr add "$LOCAL_ADDRESS" dev eth0
  fi
  if [ -n "${LOCAL_ADDRESS6-}" ]; then
    ip -6 addr add "$LOCAL_ADDRESS6" dev eth0
  fi
  if [ -n "${HOST_ADDRESS-}" ]; then
    ip route add "$HOST_ADDRESS" dev eth0
    ip route add default via "$HOST_ADDRESS"
  fi
  if [ -n "${HOST_ADDRESS6-}" ]; then
    ip -6 route add "$HOST_ADDRESS6" dev eth0
    ip -6 route add default via "$HOST_ADDRESS6"
  fi
fi

# The extra veths of a declarative container (its unit passes them as NAME,field=value,...):
# up, the local addresses, a route to the host addresses; no default route.
for veth in ${NIXLAB_EXTRA_VETHS-}; do
  name=${veth%%,*}
  ip link set dev "$name" up
  old_ifs=$IFS
  IFS=,
  for field in ${veth#"$name"}; do
    IFS=$old_ifs
    case $field in
      localAddress=*) ip addr add "${field#*=}" dev "$name" ;;
      localAddress6=*) ip -6 addr add "${field#*=}" dev "$name" ;;
    esac
  done
  IFS=,
  for field in ${veth#"$name"}; do
    IFS=$old_ifs
    case $field in
      hostAddress=*) ip route add "${field#*=}" dev "$name" ;;
      hostAddress6=*) ip -6 route add "${field#*=}" dev "$name" ;;
    esac
  done
  IFS=$old_ifs
done

# Sourced, not executed, so the trap above stays in force.
# shellcheck source=/dev/null # the system's init (init.sh rendered into the store), known only at run time
. "$1"
