#!/bin/sh
# Stage-2 of @system@ as the systemd guest: the NixOS-like files and the system's units, then
# the hosts' Debian systemd becomes PID 1 (exec: container-init sources this as PID 1). Its
# READY=1 at the end of its boot is what nspawn (--notify-ready=yes) and the unit wait for.
PATH=@busybox@/bin
@system@/bin/switch-to-configuration boot
exec /usr/lib/systemd/systemd
