"""The emulated `nixos-rebuild`: the host's declarative containers only (facts §2.3, §5.1, §6).

It evaluates the host configuration (configuration.nix and its imports) with the stand-in module
system, builds each container's guest as `nixos-container` builds an imperative one, and activates:
the read-only conf `/etc/nixos-containers/NAME.conf` and the unit `container@NAME.service` become
links into the store, autoStart containers get their `machines.target` wants-link, and the units
are stopped, started and restarted as switch-to-configuration does for them (facts §6.3).
"""

import json
import os
import subprocess
import sys

from . import common, nixos_container, sdunit, store

CONFIG_DEFAULT = "/etc/nixos/configuration.nix"
UNIT_DIR = "/etc/systemd/system"
HOSTS = "/etc/hosts"
# NixOS generates all of /etc/hosts; the lab host's file is its own, so the part NixOS adds for
# containers (networking.extraHosts) goes between these lines, replaced at each activation.
HOSTS_BEGIN = "# BEGIN containers.<name>.localAddress (lab nixos-rebuild: networking.extraHosts)"
HOSTS_END = "# END containers.<name>.localAddress"
WANTS_DIR = UNIT_DIR + "/machines.target.wants"
EVAL_HOST = os.path.join(common.PACKAGE_DIR, "nix", "eval-host.nix")
ACTIVATING = ("switch", "test")
ACTIONS = ACTIVATING + ("build", "dry-build", "dry-activate")
USAGE = ("Usage: nixos-rebuild [switch | test | build | dry-build | dry-activate] [-I nixos-config=PATH]\n"
         "(the lab's stand-in: it builds and activates the host's declarative containers only)\n")

BOOL = ("autoStart", "restartIfChanged", "privateNetwork", "ephemeral", "enableTun")
NULL_OR_STR = ("hostBridge", "hostAddress", "localAddress", "hostAddress6", "localAddress6",
               "localMacAddress", "networkNamespace", "flake", "path", "timeoutStartSec")
STR_LIST = ("tmpfs", "additionalCapabilities", "extraFlags", "interfaces", "macvlans")
OTHER = ("forwardPorts", "bindMounts", "privateUsers", "allowedDevices", "specialArgs", "nixpkgs", "extraVeths")
KNOWN = BOOL + NULL_OR_STR + STR_LIST + OTHER


class BuildError(Exception):
    """Evaluation or build failed: nixos-rebuild prints the message and exits 1."""


# ------------------------------------------------------------------ evaluation

def evaluate(configuration):
    done = subprocess.run(["nix-instantiate", "--store", "dummy://", "--eval", "--strict", "--json",
                           EVAL_HOST, "--arg", "configuration", configuration],
                          capture_output=True, text=True, errors="surrogateescape", check=False)
    if done.returncode != 0:
        raise BuildError(done.stderr)
    found, seen = {}, set()
    for entry in json.loads(done.stdout):
        position = entry.get("position") or {}
        key = (entry["name"], position.get("file"), position.get("line"))
        if key in seen:     # the same file imported twice (NixOS imports it once)
            continue
        seen.add(key)
        if entry["name"] in found:
            raise BuildError("error: (lab) containers.%s is defined in more than one place; the lab's "
                             "stand-in module system does not merge definitions\n" % entry["name"])
        found[entry["name"]] = entry
    return [check(found[name]) for name in sorted(found)]


def option_error(name, option, type_text):
    return "error: A definition for option `containers.%s.%s' is not of type `%s'.\n" % (name, option, type_text)


def check(entry):
    """Defaults applied and types checked, as the module system would (facts §6.1, §6.2)."""
    name, given = entry["name"], entry["options"]
    for option in sorted(given):
        if option not in KNOWN:
            raise BuildError("error: The option `containers.%s.%s' does not exist.\n" % (name, option))
    c = dict(given)
    for option in BOOL:
        c.setdefault(option, option == "restartIfChanged")
        if not isinstance(c[option], bool):
            raise BuildError(option_error(name, option, "boolean"))
    for option in NULL_OR_STR:
        c.setdefault(option, None)
        if c[option] is not None and not isinstance(c[option], str):
            raise BuildError(option_error(name, option, "null or string"))
    for option in STR_LIST:
        c.setdefault(option, [])
        if not isinstance(c[option], list) or not all(isinstance(i, str) for i in c[option]):
            raise BuildError(option_error(name, option, "list of string"))
    c["forwardPorts"] = [forward_port(name, p) for p in c.get("forwardPorts", [])]
    c["bindMounts"] = dict((key, bind_mount(name, key, b)) for key, b in c.get("bindMounts", {}).items())
    c["extraVeths"] = dict((key, extra_veth(name, key, v)) for key, v in sorted(c.get("extraVeths", {}).items()))
    users = c.setdefault("privateUsers", "no")
    uid = isinstance(users, int) and not isinstance(users, bool) and 0 <= users <= 0xFFFFFFFF
    if not (uid or users in ("no", "identity", "pick")):
        raise BuildError(option_error(name, "privateUsers", 'unsigned integer or one of "no", "identity", "pick"'))
    failed = []
    if "_" in name:
        failed.append("containers.%s: Names containing underscores are not allowed in container names, "
                      "because of a limitation in systemd-machined." % name)
    if c["networkNamespace"] is not None and (c["privateNetwork"] or c["interfaces"]):
        failed.append("containers.%s.networkNamespace is mutally exclusive to containers.%s.privateNetwork "
                      "and containers.%s.interfaces." % (name, name, name))
    if failed:
        raise BuildError("error:\nFailed assertions:\n" + "".join("- %s\n" % f for f in failed))
    if entry["hasConfig"] and c["flake"] is not None:
        raise BuildError("error: The options 'containers.%s.path' and 'containers.%s.flake' cannot both be set.\n"
                         % (name, name))
    if not entry["hasConfig"] and c["flake"] is None and c["path"] is None:
        raise BuildError("error: The option `containers.%s.path' is used but not defined.\n" % name)
    c.update(name=name, hasConfig=entry["hasConfig"], guest=entry["guest"], position=entry.get("position"),
             options=given)
    return c


def forward_port(name, port):
    if not isinstance(port, dict) or not isinstance(port.get("hostPort"), int) or \
            not isinstance(port.get("containerPort", 0), (int, type(None))) or \
            not isinstance(port.get("protocol", "tcp"), str):
        raise BuildError(option_error(name, "forwardPorts", "list of (submodule)"))
    return dict(protocol=port.get("protocol", "tcp"), hostPort=port["hostPort"],
                containerPort=port.get("containerPort"))


def extra_veth(name, key, veth):
    """containers.NAME.extraVeths.KEY: the network options' submodule (facts §6.1)."""
    fields = ("hostBridge", "hostAddress", "hostAddress6", "localAddress", "localAddress6", "localMacAddress")
    if not isinstance(veth, dict):
        raise BuildError(option_error(name, "extraVeths.%s" % key, "submodule"))
    for field in veth:
        if field not in fields + ("forwardPorts",):
            raise BuildError("error: The option `containers.%s.extraVeths.%s.%s' does not exist.\n" % (name, key, field))
        if field != "forwardPorts" and veth[field] is not None and not isinstance(veth[field], str):
            raise BuildError(option_error(name, "extraVeths.%s.%s" % (key, field), "null or string"))
    return dict((field, veth.get(field)) for field in fields)


def bind_mount(name, key, mount):
    if not isinstance(mount, dict) or not isinstance(mount.get("isReadOnly", True), bool):
        raise BuildError(option_error(name, "bindMounts.\"%s\"" % key, "submodule"))
    return dict(mountPoint=mount.get("mountPoint", key), hostPath=mount.get("hostPath"),
                isReadOnly=mount.get("isReadOnly", True))


# ------------------------------------------------------------------ building

def system_of(c):
    """SYSTEM_PATH: the guest built like an imperative container's (named by its defining file)."""
    if c["path"] is not None:
        return c["path"]
    if c["flake"] is not None:
        return None
    source = (c["position"] or {}).get("file")
    if source is None:          # a generated attribute set has no position: name it by its options
        fingerprint = [json.dumps(c["options"], sort_keys=True)]
    else:
        # The file that defines it and a guest `imports = [ /abs/path ];` (the module's config_file).
        fingerprint = []
        for path in [source] + nixos_container.imported_files(source):
            ok, parsed, error = store.nix_parse(path)
            if not ok:
                raise BuildError(error)
            fingerprint.append(parsed)
    services = [s for s in ("http", "ssh") if c["guest"].get(s)]
    return store.build_system(c["name"], "declarative\n" + "\n".join(fingerprint), services, guest=c["guest"])


def port_text(port):
    container = port["hostPort"] if port["containerPort"] is None else port["containerPort"]
    return "%s:%d:%d" % (port["protocol"], port["hostPort"], container)


def line(key, value):
    """`KEY=value` and its newline when set, else nothing (the module's optionalString)."""
    return "" if value is None else "%s=%s\n" % (key, value)


def render_conf(c, system_path):
    """The text environment.etc."nixos-containers/NAME.conf" gets (facts §2.3, 25.11 layout;
    LOCAL_MAC_ADDRESS as the newest module writes it). Each optional part leaves its newline."""
    text = line("SYSTEM_PATH", system_path if c["flake"] is None else None) + "\n"
    text += line("FLAKE", c["flake"]) + "\n"
    if c["privateNetwork"]:
        ports = ",".join(port_text(p) for p in c["forwardPorts"]) or None
        text += "PRIVATE_NETWORK=1\n"
        for key, value in (("HOST_BRIDGE", c["hostBridge"]), ("HOST_PORT", ports),
                           ("HOST_ADDRESS", c["hostAddress"]), ("HOST_ADDRESS6", c["hostAddress6"]),
                           ("LOCAL_ADDRESS", c["localAddress"]), ("LOCAL_ADDRESS6", c["localAddress6"])):
            text += line(key, value) + "\n"
        if c["localMacAddress"] is not None:
            text += line("LOCAL_MAC_ADDRESS", c["localMacAddress"]) + "\n"
    text += "\n"
    text += line("NETWORK_NAMESPACE_PATH", c["networkNamespace"]) + "\n"
    text += "PRIVATE_USERS=%s\n" % c["privateUsers"]
    text += 'INTERFACES="%s"\n' % " ".join(c["interfaces"])
    text += 'MACVLANS="%s"\n' % " ".join(c["macvlans"])
    text += line("AUTO_START", "1" if c["autoStart"] else None) + "\n"
    binds = "".join(bind_flag(c["bindMounts"][key]) for key in sorted(c["bindMounts"]))
    extra = (" " + " ".join(c["extraFlags"])) if c["extraFlags"] else ""
    text += 'EXTRA_NSPAWN_FLAGS="%s%s"\n' % (binds, extra)
    return text


def bind_flag(mount):
    target = mount["mountPoint"] if mount["hostPath"] is None else "%s:%s" % (mount["hostPath"], mount["mountPoint"])
    return (" --bind-ro=" if mount["isReadOnly"] else " --bind=") + target


def unit_flags(c):
    """What the declarative unit's own start script adds to systemd-nspawn (facts §5.4)."""
    capabilities = c["additionalCapabilities"] + (["CAP_NET_ADMIN"] if c["enableTun"] else [])
    flags = ["--ephemeral"] if c["ephemeral"] else []
    if capabilities:
        flags.append("--capability=" + ",".join(capabilities))
    flags += ["--tmpfs=" + path for path in c["tmpfs"]]
    return flags


def build(c):
    """The container's files in one store path; returns (store dir, conf text)."""
    conf = render_conf(c, system_of(c))
    unit = sdunit.declarative_text(c, unit_flags(c))
    path = store.store_path("nixos-container-%s-etc" % c["name"], conf, unit)

    def fill(tmp):
        for filename, text in (("%s.conf" % c["name"], conf), ("container@%s.service" % c["name"], unit)):
            with open(os.path.join(tmp, filename), "w", encoding="utf-8") as handle:
                handle.write(text)

    return store.add_to_store(path, fill)


# ------------------------------------------------------------------ activation

def unit_of(name):
    return "container@%s.service" % name


def active_declarative():
    """{name: store dir} of the current generation: the confs that are links into the store."""
    found = {}
    try:
        entries = sorted(os.listdir(common.CONF_DIR))
    except FileNotFoundError:
        return found
    for entry in entries:
        path = os.path.join(common.CONF_DIR, entry)
        if entry.endswith(".conf") and os.path.islink(path):
            target = os.readlink(path)
            if target.startswith(common.STORE_DIR + "/"):
                found[entry[:-len(".conf")]] = os.path.dirname(target)
    return found


def link(target, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".lab-tmp"
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(target, tmp)
    os.rename(tmp, path)


def unlink(path):
    if os.path.lexists(path):
        os.unlink(path)


SYSTEMCTL = "/usr/bin/systemctl"


def is_running(name):
    done = subprocess.run([SYSTEMCTL, "show", "-p", "ActiveState", "--value", unit_of(name)],
                          stdout=subprocess.PIPE, text=True, check=False)
    return done.stdout.strip() in ("active", "activating", "reloading")


def stop_unit(name):
    subprocess.run([SYSTEMCTL, "stop", unit_of(name)], check=False)


def start_unit(name):
    """True when the start job succeeded."""
    return subprocess.run([SYSTEMCTL, "start", unit_of(name)], check=False).returncode == 0


def plan(new, old):
    """(stop, start, restart) unit lists, as switch-to-configuration decides them (facts §6.3)."""
    stop = [n for n in sorted(old) if n not in new and is_running(n)]
    start, restart = [], []
    for name, (path, c) in sorted(new.items()):
        if not c["autoStart"]:
            continue                    # no triggers: a running one keeps its system until its next start
        if name not in old:
            start.append(name)
        elif old[name] != path and c["restartIfChanged"]:
            (restart if is_running(name) else start).append(name)
    return stop, start, restart


def say(verb, names):
    if names:
        sys.stderr.write("%s the following units: %s\n" % (verb, ", ".join(unit_of(n) for n in names)))


def activate(new, old):
    """Links of the new generation, then the units; returns the exit status."""
    stop, start, restart = plan(new, old)
    say("stopping", stop)
    for name in stop:
        stop_unit(name)
    sys.stderr.write("activating the configuration...\nsetting up /etc...\n")
    for name in sorted(set(old) - set(new)):
        # The definition is gone: its links go, its root directory stays (facts §6.3).
        for path in (common.conf_path(name), os.path.join(UNIT_DIR, unit_of(name)),
                     os.path.join(WANTS_DIR, unit_of(name))):
            unlink(path)
    for name, (path, c) in sorted(new.items()):
        link(os.path.join(path, "%s.conf" % name), common.conf_path(name))
        link(os.path.join(path, unit_of(name)), os.path.join(UNIT_DIR, unit_of(name)))
        if c["autoStart"]:
            link(os.path.join(path, unit_of(name)), os.path.join(WANTS_DIR, unit_of(name)))
        else:
            unlink(os.path.join(WANTS_DIR, unit_of(name)))
    write_hosts(new)
    subprocess.run([SYSTEMCTL, "daemon-reload"], check=False)
    failed = []
    say("restarting", restart)
    for name in restart:
        stop_unit(name)
        if not start_unit(name):
            failed.append(name)
    say("starting", start)
    for name in start:
        if not start_unit(name):
            failed.append(name)
    if failed:
        sys.stderr.write("warning: the following units failed: %s\n" % ", ".join(unit_of(n) for n in failed))
        return 4
    return 0


def hosts_lines(containers):
    """`ADDRESS NAME.containers` for each container with a localAddress, prefix dropped, as the
    NixOS module adds them to networking.extraHosts (whatever privateNetwork says)."""
    return ["%s %s.containers" % (c["localAddress"].split("/")[0], name)
            for name, (_path, c) in sorted(containers.items()) if c["localAddress"] is not None]


def write_hosts(containers):
    try:
        with open(HOSTS, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except FileNotFoundError:
        lines = []
    if HOSTS_BEGIN in lines and HOSTS_END in lines[lines.index(HOSTS_BEGIN):]:
        start = lines.index(HOSTS_BEGIN)
        end = lines.index(HOSTS_END, start)
        lines = lines[:start] + lines[end + 1:]
    entries = hosts_lines(containers)
    if entries:
        lines += [HOSTS_BEGIN] + entries + [HOSTS_END]
    text = "".join(line + "\n" for line in lines)
    tmp = HOSTS + ".lab-tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(tmp, 0o644)
    os.rename(tmp, HOSTS)


def imperative_clashes(names):
    """Confs that are regular files (imperative containers) where a declarative one would go."""
    return [n for n in names if os.path.lexists(common.conf_path(n)) and not os.path.islink(common.conf_path(n))]


# ------------------------------------------------------------------ command line

def parse(argv):
    action, config = None, os.environ.get("NIXOS_CONFIG") or None
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg in ("-h", "--help"):
            sys.stdout.write(USAGE)
            sys.exit(0)
        if arg == "-I" and args:
            path = args.pop(0)
            if path.startswith("nixos-config="):
                config = path[len("nixos-config="):]
        elif arg == "--option" and len(args) >= 2:
            del args[:2]
        elif arg.startswith("-"):
            continue                    # --show-trace, --fast, -v ...: no effect here
        elif action is None:
            action = arg
        else:
            common.die("error: unexpected argument '%s'\n%s" % (arg, USAGE), 1)
    if action not in ACTIONS:
        common.die("error: %s\n%s" % ("no action given" if action is None else
                                      "the lab does not emulate nixos-rebuild %s" % action, USAGE), 1)
    return action, config or CONFIG_DEFAULT


def main(argv):
    os.umask(0o022)
    action, configuration = parse(argv)
    if not os.path.exists(configuration):
        common.die("error: getting status of '%s': No such file or directory\n" % configuration, 1)
    sys.stderr.write("building the system configuration...\n")
    try:
        containers = evaluate(os.path.abspath(configuration))
        new = dict((c["name"], (build(c), c)) for c in containers)
    except BuildError as error:
        common.die(str(error), 1)
    if action in ("build", "dry-build"):
        return 0
    old = active_declarative()
    clashes = imperative_clashes(new)
    if clashes:
        common.die("error: (lab) %s is an imperative container's conf, not a link NixOS manages; "
                   "destroy the imperative container first\n" % common.conf_path(clashes[0]), 1)
    if action == "dry-activate":
        stop, start, restart = plan(new, old)
        say("would stop", stop)
        say("would restart", restart)
        say("would start", start)
        return 0
    return activate(new, old)
