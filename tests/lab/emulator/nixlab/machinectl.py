"""The emulated `machinectl` (there is no machined in the lab; nspawn runs with
--register=no): machines are the running container@ units with a live leader."""

import sys

from . import common, units


def no_machine(action, name):
    sys.stderr.write("Could not %s machine: No machine '%s' known\n" % (action, name))
    return 1


def show(args):
    wanted, value_only, names = [], False, []
    index = 0
    while index < len(args):
        word = args[index]
        index += 1
        if word in ("-p", "--property"):
            wanted.extend(args[index].split(","))
            index += 1
        elif word.startswith("--property="):
            wanted.extend(word.split("=", 1)[1].split(","))
        elif word == "--value":
            value_only = True
        else:
            names.append(word)
    running = units.machines()
    blocks = []
    for name in names:
        if name not in running:
            sys.stderr.write("Could not get path to machine: No machine '%s' known\n" % name)
            return 1
        conf = common.read_conf(name)
        values = [("Name", name), ("Class", "container"), ("Service", "systemd-nspawn"),
                  ("Unit", "container@%s.service" % name), ("Leader", str(running[name])),
                  ("RootDirectory", common.root_path(name)), ("State", "running"),
                  ("NetworkInterfaces", ""), ("PrivateNetwork", conf.get("PRIVATE_NETWORK", ""))]
        shown = [(k, v) for k, v in values if not wanted or k in wanted]
        blocks.append("".join(("%s\n" % v) if value_only else ("%s=%s\n" % (k, v)) for k, v in shown))
    sys.stdout.write("\n".join(blocks))
    return 0


def terminate(names):
    running = units.machines()
    for name in names:
        if name not in running:
            return no_machine("terminate", name)
        units.stop("container@%s.service" % name)
    return 0


def list_machines():
    running = units.machines()
    if not running:
        sys.stdout.write("No machines.\n")
        return 0
    rows = [("MACHINE", "CLASS", "SERVICE", "OS", "VERSION", "ADDRESSES")]
    for name in sorted(running):
        address = common.read_conf(name).get("LOCAL_ADDRESS", "-").split("/")[0] or "-"
        rows.append((name, "container", "systemd-nspawn", "nixos", "25.11", address))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        sys.stdout.write(" ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() + "\n")
    sys.stdout.write("\n%d machines listed.\n" % len(running))
    return 0


def main(argv):
    words = [a for a in argv if a not in ("--no-pager", "--no-legend", "--")]
    if not words or words[0] == "list":
        return list_machines()
    verb, rest = words[0], words[1:]
    if verb == "show":
        return show(rest)
    if verb in ("terminate", "poweroff", "stop"):
        return terminate(rest)
    if verb == "login":
        names = [n for n in rest if not n.startswith("-")]
        name = names[0] if names else ""
        if name not in units.machines():
            sys.stderr.write("Failed to get login PTY: No machine '%s' known\n" % name)
            return 1
        sys.stderr.write("Failed to get login PTY: the lab's guests run no getty "
                         "(use nixos-container root-login or run)\n")
        return 1
    sys.stderr.write("Unknown command verb %s.\n" % verb)
    return 1
