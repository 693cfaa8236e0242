"""What `container@.service` runs around systemd-nspawn (facts §5): preStart, the start script
(directories, resolv.conf), the nspawn command line built from the conf, and postStart (the
host side of the veth). sdunit.py's `container-unit` program calls these from the unit's Exec
lines on the lab hosts, whose real systemd runs the unit."""

import os
import shutil
import subprocess
import sys
import time

from . import common, store

IP = "/usr/sbin/ip"
NSPAWN = "/usr/bin/systemd-nspawn"
MACHINECTL = "/usr/bin/machinectl"
NIXOS_CONTAINER = os.path.join(common.EMULATOR_DIR, "nixos-container")


class StartFailure(Exception):
    """A step of the unit failed (the job result is exit-code)."""


def has_address(conf):
    return any(conf.get(k) for k in ("HOST_ADDRESS", "LOCAL_ADDRESS", "HOST_ADDRESS6", "LOCAL_ADDRESS6"))


def run_logged(argv, check=True):
    done = subprocess.run(argv, stdout=sys.stdout, stderr=sys.stdout, check=False)
    if check and done.returncode != 0:
        raise StartFailure("%s exited with status %d" % (argv[0], done.returncode))
    return done.returncode


def pre_start(name, conf):
    """Facts §5.3."""
    run_logged([MACHINECTL, "terminate", name], check=False)
    if has_address(conf):
        for link in ("ve-" + name, "vb-" + name):
            subprocess.run([IP, "link", "del", link], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=False)


def mkdir_mode(path, mode):
    os.makedirs(path, exist_ok=True)
    os.chmod(path, mode)


def system_dir(conf):
    return conf.get("SYSTEM_PATH") or "/nix/var/nix/profiles/system"


def host_system_dir(name, conf):
    """The system as the host sees it (the profile path is the per-container profile)."""
    if conf.get("SYSTEM_PATH"):
        return conf["SYSTEM_PATH"]
    return os.path.realpath("%s/%s/system" % (common.PROFILES_DIR, name))


def guest_init(name, conf):
    """"systemd" for the systemd guest (`lab.systemdGuest = true;`), else "busybox"."""
    try:
        with open(host_system_dir(name, conf) + "/lab-init", encoding="utf-8") as handle:
            return handle.read().strip()
    except OSError:
        return "busybox"


# units of the Debian root a systemd guest does not run (it is no lab host)
GUEST_MASKED = ("ssh.service", "NetworkManager.service", "NetworkManager-wait-online.service",
                "machines.target", "e2scrub_reap.service")


def systemd_guest_root(root):
    """The systemd guest's own files on its first start: the Debian root's /etc (users, dbus,
    systemd's configuration; the guest's to change) and the merged-/usr links; /usr itself is
    bound read-only (nspawn_argv)."""
    if not os.path.exists(root + "/etc/passwd"):
        run_logged(["cp", "-a", "--no-clobber", common.DEBIAN_ROOT + "/etc/.", root + "/etc/"])
        with open(root + "/etc/machine-id", "w", encoding="ascii"):
            pass                        # empty: each boot gets its own id, not the root's
        for unit in GUEST_MASKED:
            path = root + "/etc/systemd/system/" + unit
            if os.path.lexists(path):
                os.unlink(path)
            os.symlink("/dev/null", path)
    for link in ("bin", "sbin", "lib", "lib64"):
        if not os.path.lexists(root + "/" + link):
            os.symlink("usr/" + link, root + "/" + link)
    os.makedirs(root + "/usr", exist_ok=True)
    os.makedirs(root + "/var/log/journal", exist_ok=True)


def start_script(name, conf, root=None):
    """Facts §5.4 steps 1-3 and §2.6; ROOT is the unit's (an ephemeral root is not in /var/lib)."""
    root = root or common.root_path(name)
    if guest_init(name, conf) == "systemd":
        systemd_guest_root(root)
    os.makedirs(root + "/etc", exist_ok=True)
    os.makedirs(root + "/var/lib", exist_ok=True)
    mkdir_mode(root + "/var/lib/private", 0o700)
    mkdir_mode(root + "/root", 0o700)
    os.makedirs(root + "/usr/bin", exist_ok=True)
    if not os.path.lexists(root + "/etc/os-release"):
        open(root + "/etc/os-release", "a").close()
    if not os.path.exists(root + "/etc/machine-id"):
        open(root + "/etc/machine-id", "a").close()
    mkdir_mode("/run/nixos-containers", 0o700)
    mkdir_mode("%s/%s" % (common.PROFILES_DIR, name), 0o755)
    mkdir_mode("%s/%s" % (common.GCROOTS_DIR, name), 0o755)
    copy_resolv_conf(root)
    if conf.get("FLAKE") and not os.path.lexists("%s/%s/system" % (common.PROFILES_DIR, name)):
        run_logged([NIXOS_CONTAINER, "update", name])
    lab_host_prerequisites()
    make_ssh_host_key(name, conf, root)
    for ifname in conf.get("INTERFACES", "").split() + conf.get("MACVLANS", "").split():
        mark_udev_initialized(ifname)


def mark_udev_initialized(ifname):
    """Stand-in for the host's udevd: nspawn (whose /sys is writable, so it expects udev) refuses
    an interface udev has not initialized ("Network interface X is not initialized yet"). On
    NixOS udevd records every link in /run/udev/data/n<ifindex>; the lab hosts run no udevd."""
    try:
        with open("/sys/class/net/%s/ifindex" % ifname) as handle:
            ifindex = handle.read().strip()
    except OSError:
        return                          # missing: nspawn says so itself
    os.makedirs("/run/udev/data", exist_ok=True)
    path = "/run/udev/data/n%s" % ifindex
    if not os.path.exists(path):
        with open(path, "w") as handle:
            handle.write("I:%d\n" % int(time.monotonic() * 1000000))


def copy_resolv_conf(root):
    """25.11 module: always `cp --remove-destination /etc/resolv.conf` (facts §5.4, P-13)."""
    target = root + "/etc/resolv.conf"
    if os.path.lexists(target):
        os.unlink(target)
    try:
        shutil.copyfile("/etc/resolv.conf", target)
    except OSError as error:
        raise StartFailure("cp: cannot stat '/etc/resolv.conf': %s" % error.strerror)


def lab_host_prerequisites():
    """Paths every NixOS host has and nspawn binds (the lab's /nix may lack them)."""
    for path in ("/nix/var/nix/db", "/nix/var/nix/daemon-socket", common.FAULTS_DIR):
        os.makedirs(path, exist_ok=True)


def make_ssh_host_key(name, conf, root):
    """Stand-in for the guest's sshd-keygen (the guest has no ssh-keygen)."""
    services_file = host_system_dir(name, conf) + "/lab-services"
    try:
        with open(services_file) as handle:
            wants_ssh = "ssh" in handle.read().split()
    except OSError:
        wants_ssh = False
    key = root + "/etc/ssh/ssh_host_ed25519_key"
    if wants_ssh and not os.path.exists(key):
        os.makedirs(root + "/etc/ssh", exist_ok=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "root@" + name,
                        "-f", key], check=False, stdout=subprocess.DEVNULL)


def nspawn_argv(name, conf, root=None):
    """The command line of facts §5.4 plus the lab's faults bind."""
    root = root or common.root_path(name)
    flags = []
    if conf.get("PRIVATE_NETWORK") == "1":
        flags.append("--private-network")
    idmap = ""
    users = conf.get("PRIVATE_USERS", "")
    if users:
        flags.append("--private-users=" + users)
        if users == "pick" or (users.isdigit() and int(users) > 0):
            idmap = ":idmap"
    if has_address(conf) or conf.get("LOCAL_MAC_ADDRESS"):
        flags.append("--network-veth")
    for item in filter(None, conf.get("HOST_PORT", "").split(",")):
        flags.append("--port=" + item)
    if conf.get("HOST_BRIDGE"):
        flags.append("--network-bridge=" + conf["HOST_BRIDGE"])
    if conf.get("NETWORK_NAMESPACE_PATH"):
        flags.append("--network-namespace-path=" + conf["NETWORK_NAMESPACE_PATH"])
    for interface in conf.get("INTERFACES", "").split():
        flags.append("--network-interface=" + interface)
    for macvlan in conf.get("MACVLANS", "").split():
        flags.append("--network-macvlan=" + macvlan)
    argv = [NSPAWN, "--keep-unit", "-M", name, "-D", root] + flags
    argv += ["--notify-ready=yes", "--kill-signal=SIGRTMIN+3",
             "--bind-ro=/nix/store", "--bind-ro=/nix/var/nix/db",
             "--bind-ro=/nix/var/nix/daemon-socket",
             "--bind=%s/%s:/nix/var/nix/profiles%s" % (common.PROFILES_DIR, name, idmap),
             "--bind=%s/%s:/nix/var/nix/gcroots%s" % (common.GCROOTS_DIR, name, idmap),
             "--link-journal=try-guest"]
    for key in ("PRIVATE_NETWORK", "PRIVATE_USERS", "HOST_BRIDGE", "HOST_ADDRESS", "LOCAL_ADDRESS",
                "HOST_ADDRESS6", "LOCAL_ADDRESS6", "HOST_PORT"):
        argv.append("--setenv=%s=%s" % (key, conf.get(key, "")))
    if conf.get("LOCAL_MAC_ADDRESS"):
        argv.append("--setenv=LOCAL_MAC_ADDRESS=" + conf["LOCAL_MAC_ADDRESS"])
    argv.append("--setenv=PATH=%s/bin" % store.busybox())
    argv.append("--bind-ro=%s" % common.FAULTS_DIR)          # lab only: fault switches
    if guest_init(name, conf) == "systemd":
        argv.append("--bind-ro=%s/usr:/usr" % common.DEBIAN_ROOT)
    argv += conf.get("EXTRA_NSPAWN_FLAGS", "").split()
    argv += [store.container_init(), system_dir(conf) + "/init"]
    return argv


def post_start(name, conf):
    """Facts §5.6: host side of the veth, only after READY and only when not bridged."""
    if not has_address(conf) or conf.get("HOST_BRIDGE"):
        return
    link = "ve-" + name
    run_logged([IP, "link", "set", "dev", link, "up"])
    if conf.get("HOST_ADDRESS"):
        run_logged([IP, "addr", "add", conf["HOST_ADDRESS"], "dev", link])
    if conf.get("HOST_ADDRESS6"):
        run_logged([IP, "-6", "addr", "add", conf["HOST_ADDRESS6"], "dev", link])
    if conf.get("LOCAL_ADDRESS"):
        run_logged([IP, "route", "add", conf["LOCAL_ADDRESS"], "dev", link])
    if conf.get("LOCAL_ADDRESS6"):
        run_logged([IP, "-6", "route", "add", conf["LOCAL_ADDRESS6"], "dev", link])
