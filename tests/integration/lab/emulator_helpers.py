"""Shared helpers of the emulator tests (they drive one lab host through the `lab` fixture)."""

import json
import time

HOST = "host1"
PROG = "/run/current-system/sw/bin/nixos-container"

# Runs inside the host: stop every container@ unit, destroy every container, remove strays
# (empty or declarative confs, filler confs) and fault files, so each test starts clean.
CLEAN_HOST = r'''
import os, shutil, subprocess, glob
confdir = "/etc/nixos-containers"
# a unit retrying a failed start (Restart=on-failure) is not `up` for destroy
subprocess.run(["systemctl", "stop", "container@*.service"], check=True)
for conf in sorted(glob.glob(confdir + "/*.conf")):
    name = os.path.basename(conf)[:-5]
    regular = os.path.isfile(conf) and not os.path.islink(conf) and os.path.getsize(conf) > 0
    has_state = any(os.path.lexists(p % name) for p in (
        "/var/lib/nixos-containers/%s", "/nix/var/nix/profiles/per-container/%s"))
    if regular and has_state:
        subprocess.run(["nixos-container", "destroy", name], check=True)
    else:
        os.unlink(conf)
for top in ("/var/lib/nixos-containers", "/nix/var/nix/profiles/per-container",
            "/nix/var/nix/gcroots/per-container"):
    for path in glob.glob(top + "/*"):
        shutil.rmtree(path)
for path in glob.glob("/run/nixos-lab/faults/*/*"):
    os.unlink(path)
# a failed unit outlives its container
subprocess.run(["systemctl", "reset-failed", "container@*"], check=True)
print(" ".join(sorted(os.listdir(confdir))))
'''

# Prints what a test may want to know about files: {path: [kind, mode, content or target]}.
DESCRIBE = r'''
import json, os, sys
out = {}
for path in sys.argv[1:]:
    if os.path.islink(path):
        out[path] = ["link", 0, os.readlink(path)]
    elif os.path.isdir(path):
        out[path] = ["dir", os.stat(path).st_mode & 0o7777, sorted(os.listdir(path))]
    elif os.path.isfile(path):
        with open(path, encoding="utf-8", errors="replace") as handle:
            out[path] = ["file", os.stat(path).st_mode & 0o7777, handle.read()]
    else:
        out[path] = None
print(json.dumps(out))
'''


def nixos_container(lab, *args):
    return lab.exec(HOST, "nixos-container", *args)


def ok(lab, *argv):
    done = lab.exec(HOST, *argv)
    assert done.returncode == 0, (argv, done.returncode, done.stdout, done.stderr)
    return done


def python(lab, code, *args):
    return ok(lab, "/usr/bin/python3", "-c", code, *args)


def describe(lab, *paths):
    return json.loads(python(lab, DESCRIBE, *paths).stdout)


def wait_unit(lab, name, active_state, timeout=20):
    """container@NAME's properties once its ActiveState is ACTIVE_STATE (or the last seen)."""
    deadline = time.monotonic() + timeout
    while True:
        props = unit_properties(lab, name, "ActiveState", "SubState", "Result", "NRestarts")
        if props["ActiveState"] == active_state or time.monotonic() > deadline:
            return props
        time.sleep(0.2)


def clean_host(lab):
    """Leave the host without containers, units or faults (and check that it is so)."""
    assert python(lab, CLEAN_HOST).stdout == "\n"


def ip_json(lab, *args, netns_pid=None):
    argv = ["ip", "-j"] + list(args)
    if netns_pid is not None:
        argv = ["nsenter", "-t", str(netns_pid), "-n", "--"] + argv
    return json.loads(ok(lab, *argv).stdout or "[]")


def leader(lab, name):
    done = ok(lab, "machinectl", "show", name, "-p", "Leader", "--value")
    return int(done.stdout.strip())


def unit_properties(lab, name, *props):
    argv = ["systemctl", "show", "container@%s" % name]
    for prop in props:
        argv += ["-p", prop]
    text = ok(lab, *argv).stdout
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
