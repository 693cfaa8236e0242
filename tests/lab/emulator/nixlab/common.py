"""Paths, conf files and small helpers shared by the emulated commands."""

import json
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
UNITS_DIR = LAB_RUN + "/units"
FAULTS_DIR = LAB_RUN + "/faults"
JOURNAL_DIR = LAB_RUN + "/journal"
SW_BIN = "/run/current-system/sw/bin"
RELEASE = "25.11.lab"
# A lab host that booted systemd (NIXFLEET_LAB_KIND=systemd): sd_booted()'s test. There the
# real systemctl, machinectl and container@.service run the containers (sdunit.py).
REAL_SYSTEMD = os.path.isdir("/run/systemd/system")

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


def atomic_write_json(path, value):
    atomic_write(path, json.dumps(value, sort_keys=True) + "\n")


def makedirs(path, mode):
    """mkpath: create missing directories with mode (umask 022 applies, as in Perl)."""
    if not os.path.isdir(path):
        os.makedirs(path, mode)


# systemd's unit search path on a lab host: a NixOS host whose configuration sets
# boot.extraSystemdUnitPaths = [ "/etc/systemd-mutable/system" ] (as extra-container asks).
UNIT_PATH = ("/etc/systemd/system.control", "/run/systemd/transient", "/etc/systemd/system",
             "/etc/systemd-mutable/system", "/run/systemd/system")


def boot_wanted_units():
    """container@NAME.service units that machines.target wants (links in a .wants dir)."""
    found = []
    for directory in UNIT_PATH:
        wants = os.path.join(directory, "machines.target.wants")
        try:
            entries = sorted(os.listdir(wants))
        except OSError:
            continue
        for entry in entries:
            if entry.startswith("container@") and entry not in found:
                found.append(entry)
    return found


def unit_dropin_properties(unit):
    """[Service] properties of UNIT's drop-ins (*.conf in UNIT.d of each unit directory).

    As systemd: drop-ins are ordered by file name across the directories, a later one wins;
    a file of the same name in an earlier (higher-priority) directory masks the others."""
    files = {}
    for directory in UNIT_PATH:
        dropdir = os.path.join(directory, unit + ".d")
        try:
            entries = os.listdir(dropdir)
        except OSError:
            continue
        for entry in entries:
            if entry.endswith(".conf") and entry not in files:
                files[entry] = os.path.join(dropdir, entry)
    properties, paths = {}, []
    for entry in sorted(files):
        paths.append(files[entry])
        section = None
        try:
            with open(files[entry], encoding="utf-8") as handle:
                lines = handle.read().splitlines()
        except OSError:
            continue
        for line in lines:
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("[") and line.endswith("]"):
                section = line[1:-1]
            elif section == "Service" and "=" in line:
                key, value = line.split("=", 1)
                properties[key.strip()] = value.strip()
    return properties, paths
