# The stand-in for sshd: a protocol banner, then it waits for the client's.
PATH=@busybox@/bin
printf 'SSH-2.0-OpenSSH_10.0 nixos-lab-stand-in\r\n'
read -t 5 -r client_banner || true
