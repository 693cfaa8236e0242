#!/bin/sh
# Activation stand-in: the files a NixOS activation script would (re)create.
PATH=@busybox@/bin
mkdir -p /etc /root /bin /usr/bin /tmp /run/nixos-lab-guest /var/log
ln -sfn @system@ /run/current-system
ln -sfn @busybox@/bin/sh /bin/sh
ln -sfn @busybox@/bin/env /usr/bin/env
printf 'root:x:0:0:System administrator:/root:/run/current-system/sw/bin/sh\nnobody:x:65534:65534:Unprivileged account:/var/empty:/run/current-system/sw/bin/nologin\n' > /etc/passwd.lab-new
mv -f /etc/passwd.lab-new /etc/passwd
printf 'root:x:0:\nnogroup:x:65534:\n' > /etc/group.lab-new
mv -f /etc/group.lab-new /etc/group
printf 'export PATH=/run/current-system/sw/bin\nexport NIX_REMOTE=daemon\n' > /etc/profile.lab-new
mv -f /etc/profile.lab-new /etc/profile
# What machined reports as the guest's OS (machinectl list), as NixOS's /etc/os-release says.
printf 'NAME=NixOS\nID=nixos\nVERSION="25.11 (lab)"\nVERSION_ID="25.11"\nPRETTY_NAME="NixOS 25.11 (lab)"\n' > /etc/os-release.lab-new
mv -f /etc/os-release.lab-new /etc/os-release
# The generation this activation belongs to (the container's profile link).
lab_gen=$(readlink /nix/var/nix/profiles/system 2>/dev/null | sed -n 's/^system-\([0-9]*\)-link$/\1/p')
echo "${lab_gen:-0}" > /run/nixos-lab-guest/generation
# environment.etc: /etc/static is the system's etc tree and each of its names a link through it;
# a name the previous system linked and this one has not goes (NixOS's setup-etc).
ln -sfn @system@/etc /etc/static
if [ -e /run/nixos-lab-guest/etc ]; then
  grep -vxF -f @system@/lab-etc /run/nixos-lab-guest/etc | while IFS= read -r name; do
    [ "$(readlink "/etc/$name")" = "/etc/static/$name" ] && rm -f "/etc/$name"
  done
fi
while IFS= read -r name; do
  mkdir -p "$(dirname "/etc/$name")"
  ln -sfn "/etc/static/$name" "/etc/$name"
done < @system@/lab-etc
cp @system@/lab-etc /run/nixos-lab-guest/etc
