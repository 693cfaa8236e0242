#!/bin/sh
# Stage-2 stand-in of @system@: activate, start the stand-in services, report READY.
# Sourced by container-init as PID 1 of the container.
PATH=@busybox@/bin
lab_name=$(cat /proc/sys/kernel/hostname)
lab_faults=/run/nixos-lab/faults

@system@/activate

if [ -e "$lab_faults/start-fail/$lab_name" ]; then
  echo "lab: start-fail fault set for $lab_name, failing before READY" >&2
  exit 1
fi
if [ -e "$lab_faults/slow-start/$lab_name" ]; then
  lab_delay=$(cat "$lab_faults/slow-start/$lab_name")
  echo "lab: slow-start fault, READY in ${lab_delay}s" >&2
  sleep "${lab_delay:-0}"
fi

# A unit that fails here (status 4: the guest's networking) does not end the boot, as on NixOS.
@system@/bin/switch-to-configuration test || echo "lab: switch-to-configuration test: status $?" >&2
# PID 1 itself reports READY (nspawn ignores other senders), then becomes the reaper loop.
exec @sdnotify@/bin/sd-notify READY=1 "STATUS=Reached multi-user.target (lab stand-in)." -- @system@/bin/lab-pid1
