#!/bin/sh
# The lab's start faults in the systemd guest (init.sh has them for the busybox guest): a
# slow-start delays the end of the boot, so READY=1; start-fail powers the guest off with an
# error before it is ready.
PATH=@busybox@/bin
lab_name=$(cat /proc/sys/kernel/hostname)
lab_faults=/run/nixos-lab/faults
if [ -e "$lab_faults/start-fail/$lab_name" ]; then
  echo "lab: start-fail fault set for $lab_name, failing before READY" >&2
  /usr/bin/systemctl exit 1
  exit 1
fi
if [ -e "$lab_faults/slow-start/$lab_name" ]; then
  lab_delay=$(cat "$lab_faults/slow-start/$lab_name")
  echo "lab: slow-start fault, READY in ${lab_delay}s" >&2
  sleep "${lab_delay:-0}"
fi
exit 0
