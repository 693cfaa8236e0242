"""The lab hosts: each host boots the cached Debian root
(labkit.root) through its own overlay with `systemd-nspawn --boot`, so systemd, journald,
machined and sshd run as the host's services. labctl's sdboot supervises each one."""

import os
import shutil
import stat
import subprocess
import sys
import time

from labkit.common import (CONTRACT_PATH, HOST_PYTHON, LAB_SCRIPTS, NSENTER, REPO, UNSHARE,
                           LabError, write_atomically)
from labkit.kernel import (cgroup_root, children, is_alive, namespace_inode, process_cgroup,
                           process_record, raise_inotify_limit)
from labkit.state import save_state

sys.path.insert(0, os.path.join(os.path.realpath(LAB_SCRIPTS), "emulator"))
from nixlab import sdunit  # noqa: E402  pylint: disable=wrong-import-position

# the emulated NixOS commands; systemctl, machinectl and journalctl are the host's own
EMULATED_COMMANDS = ("nixos-container", "nix-env", "nix-store", "nixos-rebuild")
FAULT_KINDS = ("start-fail", "health-fail", "slow-start")
STOP_TIMEOUT = 20.0  # a clean poweroff of the host's systemd, its containers included
OS_RELEASE = """\
NAME=NixOS
ID=nixos
VERSION="25.11 (lab)"
VERSION_ID="25.11"
VERSION_CODENAME=lab
PRETTY_NAME="NixOS 25.11 (lab)"
HOME_URL="https://nixos.org/"
"""
SSHD_DROP_IN = f"""\
# written by tests/lab/labctl (the real-systemd lab); the first value of an option wins
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
PrintMotd no
PrintLastLog no
MaxStartups 100:30:200
MaxSessions 100
SetEnv PATH={CONTRACT_PATH}
"""


def put(upper, path, text, mode=0o644):
    target = os.path.join(upper, path.lstrip("/"))
    os.makedirs(os.path.dirname(target), exist_ok=True)
    write_atomically(target, text, mode)


def make_dirs(upper, path, mode):
    target = os.path.join(upper, path.lstrip("/"))
    os.makedirs(target, exist_ok=True)
    os.chmod(target, mode)


NM_LAB_CONF = """\
# written by tests/lab/labctl: the lab's own links stay as labctl made them
[main]
no-auto-default=*
[keyfile]
unmanaged-devices=interface-name:eth0;interface-name:eth1
"""


def whiteout(upper, path):
    """Hide PATH of the cached root in this host (an overlayfs whiteout: a 0/0 device)."""
    target = os.path.join(upper, path.lstrip("/"))
    os.makedirs(os.path.dirname(target), exist_ok=True)
    os.mknod(target, stat.S_IFCHR | 0o600, os.makedev(0, 0))


def networkmanager_hosts():
    """Hosts with a running NetworkManager (NIXFLEET_LAB_NM_HOSTS, default host3; "" for none)."""
    return set(filter(None, os.environ.get("NIXFLEET_LAB_NM_HOSTS", "host3").replace(",", " ").split()))


def tmpfiles_text():
    """/run is a fresh tmpfs at each boot: systemd-tmpfiles gives it the emulator's paths."""
    lines = ["# written by tests/lab/labctl: the emulated NixOS commands and the lab's fault files",
             "d /run/netns 0755 root root -", "d /run/current-system/sw/bin 0755 root root -"]
    lines += [f"d /run/nixos-lab/faults/{kind} 0755 root root -" for kind in FAULT_KINDS]
    emulator = os.path.join(os.path.realpath(LAB_SCRIPTS), "emulator")
    lines += [f"L+ /run/current-system/sw/bin/{command} - - - - {emulator}/{command}"
              for command in EMULATED_COMMANDS]
    return "\n".join(lines) + "\n"


def write_host_files(lab, index, networkmanager):
    """The host's own files, written into its overlay's upper layer before it boots."""
    name, upper = f"host{index}", os.path.join(lab.host_dir(index), "upper")
    for path, mode in (("/", 0o755), ("/etc", 0o755), ("/root", 0o700), ("/root/.ssh", 0o700),
                       ("/etc/nixos-containers", 0o755), ("/var", 0o755), ("/var/lib", 0o755),
                       ("/var/lib/nixos-containers", 0o700), ("/nix", 0o755),
                       ("/nix/store", 0o1775), ("/nix/var/nix/profiles/per-container", 0o700),
                       ("/nix/var/nix/gcroots/per-container", 0o755), ("/srv", 0o755)):
        make_dirs(upper, path, mode)
    put(upper, "/etc/hostname", f"{name}\n")
    put(upper, "/etc/hosts", f"127.0.0.1\tlocalhost\n{lab.address(index)}\t{name}\n"
                             "::1\tlocalhost ip6-localhost ip6-loopback\n")
    put(upper, "/etc/os-release", OS_RELEASE)
    with open("/etc/resolv.conf", encoding="utf-8") as resolv:  # containers' start copies it
        put(upper, "/etc/resolv.conf", resolv.read())
    put(upper, "/etc/profile.d/nixos-lab-path.sh", f"export PATH={CONTRACT_PATH}\n")
    put(upper, "/etc/ssh/sshd_config.d/nixfleet-lab.conf", SSHD_DROP_IN)
    put(upper, "/etc/tmpfiles.d/nixos-lab.conf", tmpfiles_text())
    # what boot.enableContainers gives a NixOS host: the template, and machines.target wanted
    # by multi-user.target (Debian's systemd ships machines.target itself)
    put(upper, "/etc/systemd/system/container@.service", sdunit.template_text())
    wants = os.path.join(upper, "etc/systemd/system/multi-user.target.wants")
    os.makedirs(wants, exist_ok=True)
    os.symlink("/lib/systemd/system/machines.target", os.path.join(wants, "machines.target"))
    if networkmanager:  # the NetworkManager variant: unmasked, enabled, off the lab's links
        whiteout(upper, "/etc/systemd/system/NetworkManager.service")
        os.symlink("/lib/systemd/system/NetworkManager.service",
                   os.path.join(wants, "NetworkManager.service"))
        put(upper, "/etc/NetworkManager/conf.d/00-nixfleet-lab.conf", NM_LAB_CONF)
    else:  # as on a NixOS host without networking.networkmanager: no /etc/NetworkManager
        whiteout(upper, "/etc/NetworkManager")
    ssh_dir = lab.path("ssh")
    for suffix, mode in (("", 0o600), (".pub", 0o644)):
        shutil.copyfile(os.path.join(ssh_dir, f"host{index}_ed25519{suffix}"),
                        os.path.join(upper, f"etc/ssh/ssh_host_ed25519_key{suffix}"))
        os.chmod(os.path.join(upper, f"etc/ssh/ssh_host_ed25519_key{suffix}"), mode)
    shutil.copyfile(os.path.join(ssh_dir, "authorized_keys"),
                    os.path.join(upper, "root/.ssh/authorized_keys"))
    os.chmod(os.path.join(upper, "root/.ssh/authorized_keys"), 0o600)


def start_host(lab, state, index, lower):
    """Boot host INDEX (its namespace on the bridge already made) under sdboot."""
    name, netns = f"host{index}", lab.netns(index)
    host_dir = lab.host_dir(index)
    os.makedirs(host_dir, exist_ok=True)
    networkmanager = name in networkmanager_hosts()
    write_host_files(lab, index, networkmanager)
    raise_inotify_limit()
    cgroup = None
    if cgroup_root():
        cgroup = os.path.join(cgroup_root(), netns)
        os.makedirs(cgroup, exist_ok=True)
        state["cgroups"].append(cgroup)
        save_state(lab, state)
    argv = [NSENTER, f"--net=/run/netns/{netns}", "--", UNSHARE, "--mount", "--cgroup", "--pid",
            "--fork", "--kill-child", "--mount-proc", "--",
            HOST_PYTHON, os.path.join(LAB_SCRIPTS, "sdboot"), "--netns", f"/run/netns/{netns}",
            "--lower", lower, "--host-dir", host_dir, "--machine", f"{lab.prefix}{name}",
            "--hostname", name, "--repo", REPO]

    def enter_cgroup():
        if cgroup:
            with open(os.path.join(cgroup, "cgroup.procs"), "w", encoding="ascii") as procs:
                procs.write("0")

    with open(os.path.join(host_dir, "init.log"), "ab") as log:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                   start_new_session=True, preexec_fn=enter_cgroup)
    state["hosts"][name] = {"index": index, "address": lab.address(index), "cgroup": cgroup,
                            "networkmanager": networkmanager,
                            "unshare": process_record(process.pid)}
    save_state(lab, state)


def descendants(pid):
    found, pending = [], [pid]
    while pending:
        for child in children(pending.pop()):
            found.append(child)
            pending.append(child)
    return found


def find_supervisor(host):
    """sdboot: PID 1 of its own PID namespace (nspawn reads PID 1's cgroup to find the
    hierarchy's root), the only child of unshare."""
    if not is_alive(host.get("supervisor")):
        host.pop("supervisor", None)
        if is_alive(host.get("unshare")):
            for child in children(host["unshare"]["pid"]):
                host["supervisor"] = process_record(child)
    return host.get("supervisor")


def find_leader(host):
    """The host's systemd (PID 1 of its PID namespace): sdboot's descendant in another PID
    namespace. It changes when the host reboots."""
    supervisor = find_supervisor(host)
    if not is_alive(supervisor):
        return None
    own = namespace_inode(supervisor["pid"], "pid")
    for pid in descendants(supervisor["pid"]):
        if namespace_inode(pid, "pid") not in (own, None):
            return pid
    return None


def record_leader(host, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        leader = find_leader(host)
        if leader is not None:
            host["init"] = process_record(leader)
            host["pid_ns"] = namespace_inode(leader, "pid")
            return True
        if not is_alive(host.get("unshare")):
            return False
        time.sleep(0.05)
    return False


def current_leader(state, name):
    """The running host's systemd PID, following reboots (the state file is updated)."""
    host = state["hosts"][name]
    if not is_alive(host.get("init")):
        if not record_leader(host, timeout=0.0):
            raise LabError(f"{name} is not running (labctl status)")
    return host["init"]["pid"]


def leader_cgroup(leader):
    """The host's root cgroup as the machine sees it: the parent of its systemd's init.scope,
    so a command run there sits at "/" inside the host, as a service of its own would."""
    path = process_cgroup(leader)
    root = cgroup_root()
    if path is None or root is None:
        return None
    return os.path.join(root, os.path.dirname(path).lstrip("/"))


def exec_argv(leader, argv):
    """nsenter into the host's systemd namespaces, then cd /root (PID 1's cwd is /)."""
    return [NSENTER, "-t", str(leader), "--mount", "--uts", "--ipc", "--net", "--pid", "--cgroup",
            "--", "/bin/sh", "-c", 'cd /root && exec "$@"', "sh", *argv]


def reboot(lab, state, name, run_in_host, ready):
    """A real reboot: the host's systemd stops everything, nspawn exits 133, sdboot boots the
    host again; return once its systemd reports the boot finished and sshd answers."""
    old = current_leader(state, name)
    run_in_host(["systemctl", "reboot"])
    host = state["hosts"][name]
    deadline = time.monotonic() + 120.0
    while time.monotonic() < deadline:
        leader = find_leader(host)
        if leader not in (None, old):
            host["init"] = process_record(leader)
            host["pid_ns"] = namespace_inode(leader, "pid")
            save_state(lab, state)
            break
        if not is_alive(host.get("supervisor")):
            raise LabError(f"{name} did not come back from the reboot (see its init.log)")
        time.sleep(0.1)
    else:
        raise LabError(f"{name} did not reboot within 120 s")
    waited = wait_booted(run_in_host, 120.0)
    if not ready(host["address"], 60.0):
        raise LabError(f"{name}: sshd not answering after the reboot ({waited})")
    return 0


def wait_booted(run_in_host, seconds):
    """The host's systemd state once its boot finished (running or degraded). Right after the
    new init appears, `is-system-running --wait` may return at once (no bus yet: "offline",
    or "starting"), so ask again until the boot is over."""
    deadline = time.monotonic() + seconds
    while True:
        waited = run_in_host(["systemctl", "is-system-running", "--wait"]).strip()
        if waited in ("running", "degraded") or time.monotonic() > deadline:
            return waited
        time.sleep(0.2)
