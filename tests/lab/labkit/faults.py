"""Faults a test switches on in a host: start and health failures, slow starts (files the
emulator reads), an unreachable host (its uplink down), and clearing them."""

import contextlib
import os
import shutil

from labkit.common import IP, LabError, lab_lock, run, write_atomically
from labkit.hosts import close_control_masters, running_init
from labkit.state import host_record, load_state, save_state

FAULT_KINDS = ("start-fail", "health-fail", "slow-start")


def fault_dir(init_pid, kind):
    # /proc/PID/root is the host's own view of its filesystem (its private /run)
    return f"/proc/{init_pid}/root/run/nixos-lab/faults/{kind}"


def checked_name(name):
    if not name or "/" in name or name in (".", "..") or "\0" in name:
        raise LabError(f"bad container name {name!r}")
    return name


def set_uplink(lab, state, name, up):
    index = host_record(state, name)["index"]
    run([IP, "link", "set", lab.veth(index), "up" if up else "down"])
    unreachable = set(state.get("unreachable", []))
    if up:
        unreachable.discard(name)
    else:
        unreachable.add(name)
        # an existing ssh master would hang on the dead link instead of timing out
        close_control_masters(lab.control_dir, state["hosts"][name]["address"])
    state["unreachable"] = sorted(unreachable)
    save_state(lab, state)


def clear_faults(init_pid):
    for kind in FAULT_KINDS:
        directory = fault_dir(init_pid, kind)
        with contextlib.suppress(FileNotFoundError):
            for entry in os.listdir(directory):
                path = os.path.join(directory, entry)
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path)
                else:
                    os.unlink(path)


def command_fault(lab, name, words):
    with lab_lock(lab):
        state = load_state(lab)
        init = running_init(state, name)
        kind, arguments = (words[0], words[1:]) if words else ("", [])
        if kind in ("start-fail", "health-fail") and len(arguments) == 1:
            write_atomically(os.path.join(fault_dir(init, kind), checked_name(arguments[0])), "")
        elif kind == "slow-start" and len(arguments) == 2:
            seconds = parse_seconds(arguments[1])
            write_atomically(os.path.join(fault_dir(init, kind), checked_name(arguments[0])),
                             f"{seconds:g}\n")
        elif kind == "unreachable" and not arguments:
            set_uplink(lab, state, name, up=False)
        elif kind == "clear" and not arguments:
            clear_faults(init)
            set_uplink(lab, state, name, up=True)
        else:
            raise LabError("usage: labctl fault HOST start-fail NAME | health-fail NAME | "
                           "slow-start NAME SECONDS | unreachable | clear")
    return 0


def parse_seconds(text):
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < 86400:
        raise LabError(f"SECONDS must be a number of seconds, not {text!r}")
    return seconds
