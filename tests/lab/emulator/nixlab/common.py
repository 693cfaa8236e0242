"""Paths, conf files and small helpers shared by the emulated commands."""

import os
import sys
import tempfile

CONF_DIR = "/etc/nixos-containers"
STATE_DIR = "/var/lib/nixos-containers"
PROFILES_DIR = "/nix/var/nix/profiles/per-container"
GCROOTS_DIR = "/nix/var/nix/gcroots/per-container"
STORE_DIR = "/nix/store"
LOCK_FILE = "/run/lock/nixos-container"
LAB_RUN = "/run/nixos-lab"
FAULTS_DIR = LAB_RUN + "/faults"
SW_BIN = "/run/current-system/sw/bin"
# The hosts' cached Debian root as sdboot binds it into each host, read-only: the systemd
# guest's /usr and the /etc it starts from (startscript.py)
DEBIAN_ROOT = "/var/lib/nixos-lab/debian-root"
RELEASE = "25.11.lab"

# Where the emulator's own files live (the scripts are reached through symlinks).
PACKAGE_DIR = os.path.dirname(os.path.realpath(__file__))
EMULATOR_DIR = os.path.dirname(PACKAGE_DIR)

# Line numbers of the upstream Perl script's `die` calls (for " at SCRIPT line N.").
PERL_LINE = {
    "address_pair": 132,
    "host_network": 136,
    "config_conflict": 142,
    "clear_state_unlink": 213,
    "lock_open": 220,
    "ip_scan_read": 257,
    "update_flake_nspawn": 480,
    "update_nspawn": 502,
    "show_ip_read": 534,
}


def set_process_name(script):
    """Name the process after SCRIPT (ps, /proc/PID/comm), as the kernel does for a script
    started through its interpreter directly; `#!/usr/bin/env python` would leave "python"."""
    try:
        with open("/proc/self/comm", "w", encoding="utf-8") as handle:
            handle.write(os.path.basename(script)[:15])
    except OSError:
        pass


def conf_path(name):
    return "%s/%s.conf" % (CONF_DIR, name)


def root_path(name):
    return "%s/%s" % (STATE_DIR, name)


def perl_true(value):
    """Perl truthiness of a string: undef, "" and "0" are false."""
    return value is not None and value != "" and value != "0"


def perl_die_at(message, key):
    """A die message without trailing newline gets Perl's location suffix."""
    return "%s at %s line %d.\n" % (message, sys.argv[0], PERL_LINE[key])


def die(message, status=255):
    sys.stdout.flush()
    sys.stderr.write(message)
    sys.stderr.flush()
    sys.exit(status)


def parse_conf_text(text):
    """KEY=value lines as systemd's EnvironmentFile reads them (quotes stripped)."""
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or line.startswith(";") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        key = key.strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key] = value
    return values


def read_conf(name):
    """The unit's environment from NAME.conf; a missing file is fine (EnvironmentFile=-)."""
    try:
        with open(conf_path(name), encoding="utf-8", errors="surrogateescape") as handle:
            return parse_conf_text(handle.read())
    except FileNotFoundError:
        return {}


def atomic_write(path, data, mode=0o644):
    """Write bytes or text so that a reader sees the old or the new file, never half."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        os.write(fd, data)
        os.fchmod(fd, mode)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.rename(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def makedirs(path, mode):
    """mkpath: create missing directories with mode (umask 022 applies, as in Perl)."""
    if not os.path.isdir(path):
        os.makedirs(path, mode)
