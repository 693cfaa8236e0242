# shellcheck shell=sh
# The stand-in for sshd: a protocol banner, then it waits for the client's.
PATH=@busybox@/bin
printf 'SSH-2.0-OpenSSH_10.0 nixos-lab-stand-in\r\n'
# shellcheck disable=SC3045 # busybox ash has read -t
read -t 5 -r _ || true
