"""The emulated `systemctl`: what nixos-container and the collection use, for
`container@NAME.service` (any other unit is "not found", as on a host without it)."""

import os
import sys
import time

from . import common, units

VERBS = ("start", "stop", "restart", "reload", "is-active", "show", "daemon-reload", "status", "reboot",
         "reset-failed")

RESULT_TEXT = {
    "exit-code": "the control process exited with error code",
    "timeout": "a timeout was exceeded",
    "signal": "a fatal signal was delivered to the control process",
    "core-dump": "a fatal signal was delivered causing the control process to dump core",
    "start-limit-hit": "the service was restarted too often",
    "resources": "of unavailable resources or another system error",
}

# Order of `systemctl show` (service properties first, then unit properties, as systemd does).
PROPERTY_ORDER = [
    "Type", "Restart", "NotifyAccess", "RestartUSec", "TimeoutStartUSec", "TimeoutStopUSec",
    "MainPID", "ControlPID", "StatusText", "Result", "ReloadResult", "NRestarts",
    "ExecMainStartTimestamp", "ExecMainExitTimestamp", "ExecMainPID", "ExecMainCode",
    "ExecMainStatus", "Slice", "Delegate", "KillMode", "KillSignal", "Id", "Names",
    "Description", "LoadState", "ActiveState", "SubState", "FragmentPath", "UnitFileState",
    "InactiveExitTimestamp", "ActiveEnterTimestamp", "ActiveExitTimestamp",
    "InactiveEnterTimestamp", "StateChangeTimestamp", "CanStart", "CanStop", "CanReload",
    "InvocationID", "CPUQuotaPerSecUSec", "MemoryMax", "TasksMax", "DropInPaths",
]
TIMESTAMPS = {"ExecMainStartTimestamp", "ExecMainExitTimestamp", "InactiveExitTimestamp",
              "ActiveEnterTimestamp", "ActiveExitTimestamp", "InactiveEnterTimestamp",
              "StateChangeTimestamp"}


def format_timestamp(usec):
    if not usec:
        return ""
    return time.strftime("%a %Y-%m-%d %H:%M:%S %Z", time.localtime(usec / 1_000_000))


def properties(unit):
    name = units.instance_of(unit)
    if name is None:
        return {"Id": unit, "Names": unit, "Description": unit, "LoadState": "not-found",
                "ActiveState": "inactive", "SubState": "dead", "Result": "success",
                "MainPID": "0", "ExecMainPID": "0", "NRestarts": "0", "ControlPID": "0",
                "TimeoutStartUSec": "1min 30s", "ActiveEnterTimestamp": "",
                "UnitFileState": "", "FragmentPath": "", "CanStart": "no", "CanStop": "yes",
                "CanReload": "no", "InvocationID": ""}
    state = units.read_state(unit)
    values = {
        "Type": "notify", "Restart": "on-failure", "NotifyAccess": "all", "RestartUSec": "100ms",
        "TimeoutStartUSec": "1min", "TimeoutStopUSec": "1min 30s", "Slice": "machine.slice",
        "Delegate": "yes", "KillMode": "mixed", "KillSignal": "15", "Id": unit, "Names": unit,
        "Description": "Container '%s'" % name, "LoadState": "loaded",
        "FragmentPath": "/etc/systemd/system/container@.service", "UnitFileState": "static",
        "CanStart": "yes", "CanStop": "yes", "CanReload": "yes",
    }
    dropins, paths = common.unit_dropin_properties(unit)
    values.update(CPUQuotaPerSecUSec=cpu_quota_text(dropins.get("CPUQuota")),
                  MemoryMax=size_text(dropins.get("MemoryMax")),
                  TasksMax=size_text(dropins.get("TasksMax")), DropInPaths=" ".join(paths))
    for key in ("MainPID", "ControlPID", "ExecMainPID", "ExecMainCode", "ExecMainStatus",
                "NRestarts"):
        values[key] = str(state[key])
    for key in ("ActiveState", "SubState", "Result", "ReloadResult", "StatusText", "InvocationID"):
        values[key] = state[key]
    for key in TIMESTAMPS:
        values[key] = format_timestamp(state.get(key, 0))
    return values


def cpu_quota_text(value):
    """systemctl show's CPUQuotaPerSecUSec: "infinity" or the time per second ("500ms", "1.500000s")."""
    if not value:
        return "infinity"
    usec = round(float(value.rstrip("%")) * 10000)
    if usec % 1000000 == 0:
        return "%ds" % (usec // 1000000)
    if usec < 1000000:
        return "%dms" % (usec // 1000) if usec % 1000 == 0 else "%dus" % usec
    return "%.6fs" % (usec / 1000000.0)


def size_text(value):
    if not value or value == "infinity":
        return "infinity"
    suffix = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    if value[-1] in suffix:
        return str(int(value[:-1]) * suffix[value[-1]])
    return value


def do_reboot(unit_list, opts):
    """Lab: the host's systemd "reboots" (the lab host's init keeps running): every running
    container@ unit is stopped cleanly, then exactly the units machines.target wants are
    started, as multi-user.target -> machines.target would at boot (facts §5.1)."""
    try:
        entries = sorted(os.listdir(common.UNITS_DIR))
    except FileNotFoundError:
        entries = []
    for entry in entries:
        if entry.endswith(".service.json"):
            units.stop(entry[:-len(".json")])
    status = 0
    for unit in common.boot_wanted_units():
        if units.instance_of(unit) is None or not os.path.exists(common.conf_path(units.instance_of(unit))):
            sys.stderr.write("machines.target wants %s, which does not exist (skipped)\n" % unit)
            continue
        result = units.start(unit, block=True)
        if result != "done":
            status = job_failed(unit, result)
    return status


def job_failed(unit, result):
    sys.stderr.write('Job for %s failed because %s.\nSee "systemctl status %s" and '
                     '"journalctl -xeu %s" for details.\n'
                     % (unit, RESULT_TEXT.get(result, "of an unknown reason"), unit, unit))
    return 1


def not_found(verb, unit):
    sys.stderr.write("Failed to %s %s: Unit %s not found.\n" % (verb, unit, unit))
    return 5


def do_start(unit_list, opts):
    status = 0
    for unit in unit_list:
        if units.instance_of(unit) is None:
            return not_found("start", unit)
        result = units.start(unit, block="no-block" not in opts)
        if result != "done":
            status = job_failed(unit, result)
    return status


def do_stop(unit_list, opts):
    for unit in unit_list:
        if units.instance_of(unit) is None:
            sys.stderr.write("Failed to stop %s: Unit %s not loaded.\n" % (unit, unit))
            return 5
        units.stop(unit)
    return 0


def do_restart(unit_list, opts):
    for unit in unit_list:
        if units.instance_of(unit) is None:
            return not_found("restart", unit)
    do_stop(unit_list, opts)
    return do_start(unit_list, opts)


def do_reload(unit_list, opts):
    status = 0
    for unit in unit_list:
        if units.instance_of(unit) is None:
            return not_found("reload", unit)
        result = units.reload(unit)
        if result == "invalid":
            sys.stderr.write("Job for %s invalid.\n" % unit)
            status = 1
        elif result != "done":
            status = job_failed(unit, result)
    return status


def do_reset_failed(unit_list, opts):
    for unit in unit_list:
        if units.instance_of(unit) is None:
            sys.stderr.write("Failed to reset failed state of unit %s: Unit %s not loaded.\n" % (unit, unit))
            return 1
        units.reset_failed(unit)
    return 0


def do_is_active(unit_list, opts):
    any_active = False
    for unit in unit_list:
        state = properties(unit)["ActiveState"]
        any_active = any_active or state in ("active", "reloading")
        if "quiet" not in opts:
            sys.stdout.write(state + "\n")
    return 0 if any_active else 3


def do_show(unit_list, opts):
    wanted = opts.get("property", [])
    blocks = []
    for unit in unit_list:
        values = properties(unit)
        keys = [k for k in PROPERTY_ORDER if k in values and (not wanted or k in wanted)]
        if "value" in opts:
            blocks.append("".join("%s\n" % values[k] for k in keys))
        else:
            blocks.append("".join("%s=%s\n" % (k, values[k]) for k in keys))
    sys.stdout.write("\n".join(blocks))
    return 0


def do_status(unit_list, opts):
    """A short status page (systemctl's own layout, without the journal tail)."""
    status = 0
    for unit in unit_list:
        values = properties(unit)
        if values["LoadState"] == "not-found":
            sys.stderr.write("Unit %s could not be found.\n" % unit)
            return 4
        sys.stdout.write("%s %s - %s\n     Loaded: loaded (%s; %s)\n     Active: %s (%s)\n"
                         % ("●", unit, values["Description"], values["FragmentPath"],
                            values["UnitFileState"], values["ActiveState"], values["SubState"]))
        if values["MainPID"] != "0":
            sys.stdout.write("   Main PID: %s (systemd-nspawn)\n" % values["MainPID"])
        if values["ActiveState"] != "active":
            status = 3
    return status


HANDLERS = {"start": do_start, "stop": do_stop, "restart": do_restart, "reload": do_reload,
            "is-active": do_is_active, "show": do_show, "status": do_status, "reboot": do_reboot,
            "reset-failed": do_reset_failed}


def parse(argv):
    opts, words = {}, []
    index = 0
    while index < len(argv):
        word = argv[index]
        index += 1
        if word in ("-p", "--property"):
            if index >= len(argv):
                sys.stderr.write("systemctl: option requires an argument -- 'p'\n")
                sys.exit(1)
            opts.setdefault("property", []).extend(argv[index].split(","))
            index += 1
        elif word.startswith("--property="):
            opts.setdefault("property", []).extend(word.split("=", 1)[1].split(","))
        elif word.startswith("-p") and not word.startswith("--"):
            opts.setdefault("property", []).extend(word[2:].split(","))
        elif word == "--value":
            opts["value"] = True
        elif word in ("-q", "--quiet"):
            opts["quiet"] = True
        elif word == "--no-block":
            opts["no-block"] = True
        elif word in ("-a", "--all", "--no-pager", "--no-legend", "--full", "-l", "--system"):
            pass
        elif word == "--":
            words.extend(argv[index:])
            break
        elif word.startswith("-"):
            sys.stderr.write("systemctl: unrecognized option '%s'\n" % word)
            sys.exit(1)
        else:
            words.append(word)
    return opts, words


def main(argv):
    opts, words = parse(argv)
    if not words:
        sys.stderr.write("Too few arguments.\n")
        return 1
    verb, unit_list = words[0], [units.normalize(u) for u in words[1:]]
    if verb == "daemon-reload":
        return 0
    if verb not in HANDLERS:
        sys.stderr.write("Unknown command verb %s.\n" % verb)
        return 1
    if not unit_list and verb not in ("show", "reboot"):
        sys.stderr.write("Too few arguments.\n")
        return 1
    return HANDLERS[verb](unit_list, opts)
