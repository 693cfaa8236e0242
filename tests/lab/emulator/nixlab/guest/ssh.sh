#!/bin/sh
# The stand-in for sshd: a protocol banner, then it waits for the client's.
PATH=@busybox@/bin
printf 'SSH-2.0-OpenSSH_10.0 nixos-lab-stand-in\r\n'
# read -t is not POSIX (SC3045), but this only ever runs under busybox ash, which has it.
# shellcheck disable=SC3045
read -t 5 -r _ || true
