"""The cached Debian root that real-systemd lab hosts boot from (docs/lab.md).

Built once per machine with debootstrap from the Debian archive that apt uses, stored under
/var/cache/nixfleet-lab/root-<hash> where the hash covers everything that shapes the tree
(suite, package list, the setup below): changing the list builds a new root beside the old one.
Lab hosts never write to it: each boots from its own overlay.
"""

import contextlib
import fcntl
import glob
import hashlib
import os
import shutil
import subprocess
import time

from labkit.common import LabError, write_atomically

CACHE_DIR = os.environ.get("NIXFLEET_LAB_CACHE", "/var/cache/nixfleet-lab")
SUITE = "bookworm"
DEBOOTSTRAP = "/usr/sbin/debootstrap"
# What a lab host needs: systemd with machined and nspawn, sshd, the modules' Python and
# pyroute2, the tools the modules call, Nix, the busybox guests and gcc for their sd-notify.
BASE_PACKAGES = ("dbus", "systemd", "systemd-sysv")
PACKAGES = (
    "busybox-static", "curl", "dbus", "gcc", "iproute2", "iptables", "iputils-ping",
    "libc6-dev", "network-manager", "nftables", "nix-bin", "openssh-server", "procps",
    "python-is-python3", "python3", "python3-pyroute2", "systemd", "systemd-container",
    "systemd-sysv",
)
# Units a lab host never needs; NetworkManager is enabled per host (the NM variant) only.
MASKED_UNITS = ("NetworkManager.service", "NetworkManager-wait-online.service",
                "systemd-networkd.service", "systemd-resolved.service", "apt-daily.timer",
                "apt-daily-upgrade.timer", "e2scrub_all.timer", "fstrim.timer",
                "console-getty.service", "getty@.service", "systemd-timesyncd.service")
SETUP_VERSION = "1"  # bump when prepare() changes what it writes


def root_hash():
    text = "\n".join([SUITE, SETUP_VERSION, *BASE_PACKAGES, *sorted(PACKAGES), *MASKED_UNITS])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def root_path():
    return os.path.join(CACHE_DIR, f"root-{root_hash()}")


def debian_mirror():
    """The first Debian archive URI apt is configured with (deb822 or one-line format)."""
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")) + ["/etc/apt/sources.list"] \
            + sorted(glob.glob("/etc/apt/sources.list.d/*.list")):
        with contextlib.suppress(OSError), open(path, encoding="utf-8") as stream:
            for line in stream:
                words = line.split("#", 1)[0].split()
                uris = words[1:] if words[:1] == ["URIs:"] else words[1:2] if words[:1] == ["deb"] else []
                for uri in uris:
                    if uri.rstrip("/").endswith("/debian") and uri.startswith("http"):
                        return uri
    raise LabError("no Debian archive (…/debian) in /etc/apt/sources.list*: cannot build the lab root")


def prepare(tree):
    """Make the fresh tree bootable as a lab host: no machine id (each boot gets its own),
    units a host never needs masked, sshd enabled; per-host files come from labctl."""
    write_atomically(os.path.join(tree, "etc", "machine-id"), "")
    for unit in MASKED_UNITS:
        link = os.path.join(tree, "etc", "systemd", "system", unit)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(link)
        os.symlink("/dev/null", link)
    for leftover in glob.glob(os.path.join(tree, "etc", "ssh", "ssh_host_*")):
        os.unlink(leftover)  # every host gets its own keys from labctl
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(os.path.join(tree, "var", "cache", "apt", "archives"))
    os.makedirs(os.path.join(tree, "var", "cache", "apt", "archives", "partial"), exist_ok=True)


def build_step(argv, log_path, environment=None):
    result = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            env=environment, check=False)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-15:])
        where = f"; see {log_path}" if log_path else ""
        raise LabError(f"{' '.join(argv[:4])} failed (exit {result.returncode}{where}):\n{tail}")


def ensure_root(log=print):
    """The path of the cached root, building it first when it is missing (under a lock)."""
    path = root_path()
    if os.path.exists(f"{path}.complete"):
        return path
    os.makedirs(CACHE_DIR, mode=0o755, exist_ok=True)
    with open(os.path.join(CACHE_DIR, ".lock"), "w", encoding="ascii") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(f"{path}.complete"):
            return path
        if not os.access(DEBOOTSTRAP, os.X_OK):
            raise LabError(f"missing {DEBOOTSTRAP} (Debian package debootstrap; make deps)")
        building = f"{path}.building"
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(building)
        mirror = debian_mirror()
        log(f"labctl: building the lab root {path} with debootstrap from {mirror} (once per machine)")
        started = time.monotonic()
        # debootstrap's resolver ignores virtual packages (perl-dbdabi-94, logind): a minimal
        # base first, then apt inside it installs the list with real dependency resolution
        build_step([DEBOOTSTRAP, "--variant=minbase", "--include=" + ",".join(BASE_PACKAGES), SUITE,
                    building, mirror], os.path.join(building, "debootstrap", "debootstrap.log"))
        shutil.copyfile("/etc/resolv.conf", os.path.join(building, "etc", "resolv.conf"))
        environment = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                       "LANG": "C.UTF-8"}
        build_step(["chroot", building, "apt-get", "update", "-qq"], None, environment)
        build_step(["chroot", building, "apt-get", "install", "-y", "-qq", "--no-install-recommends",
                    *PACKAGES], None, environment)
        build_step(["chroot", building, "apt-get", "clean"], None, environment)
        os.unlink(os.path.join(building, "etc", "resolv.conf"))
        prepare(building)
        os.rename(building, path)
        write_atomically(f"{path}.complete", f"{time.time():.0f}\n")
        log(f"labctl: lab root built in {time.monotonic() - started:.0f}s")
    return path
