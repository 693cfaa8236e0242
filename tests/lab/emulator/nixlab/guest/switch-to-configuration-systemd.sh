#!/bin/sh
# switch-to-configuration of @system@ as the systemd guest: NixOS-like files, the system's
# units linked into /etc/systemd/system (wanted as their [Install] says); "test"/"switch" then
# make the running systemd load them and restart what changed.
PATH=@busybox@/bin
case "${1-}" in
  test|switch|boot) ;;
  dry-activate) exit 0 ;;
  *) echo "Usage: $0 [switch|boot|test|dry-activate]" >&2; exit 1 ;;
esac
mkdir -p /run/nixos-lab-guest /etc/systemd/system/multi-user.target.wants \
  /etc/systemd/system/sockets.target.wants
ln -sfn @system@ /run/current-system
echo @name@ > /etc/hostname    # networking.hostName defaults to the container's name
rm -f /etc/os-release
printf 'NAME=NixOS\nID=nixos\nVERSION="25.11 (lab)"\nVERSION_ID="25.11"\nPRETTY_NAME="NixOS 25.11 (lab)"\n' > /etc/os-release
lab_gen=$(readlink /nix/var/nix/profiles/system 2>/dev/null | sed -n 's/^system-\([0-9]*\)-link$/\1/p')
echo "${lab_gen:-0}" > /run/nixos-lab-guest/generation
for link in /etc/systemd/system/lab-* /etc/systemd/system/*.wants/lab-*; do
  [ -L "$link" ] && rm -f "$link"
done
for unit in @system@/etc/systemd/system/*; do
  ln -sfn "$unit" /etc/systemd/system/
done
ln -sfn @system@/etc/systemd/system/lab-start-faults.service /etc/systemd/system/multi-user.target.wants/
if [ -e @system@/etc/systemd/system/lab-http.socket ]; then
  ln -sfn @system@/etc/systemd/system/lab-http.socket /etc/systemd/system/sockets.target.wants/
fi
[ "$1" = boot ] && exit 0
/usr/bin/systemctl daemon-reload
if [ -e @system@/etc/systemd/system/lab-http.socket ]; then
  /usr/bin/systemctl restart lab-http.socket
else
  /usr/bin/systemctl stop lab-http.socket 2>/dev/null || true
fi
exit 0
