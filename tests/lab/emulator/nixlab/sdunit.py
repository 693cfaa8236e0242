"""`container@.service` as a real systemd unit, for lab hosts that boot systemd
(docs/lab.md): the unit texts (facts §5) and the programs its
Exec lines run (`container-unit pre-start|start|post-start|reload NAME`).

The start program does what the NixOS start script does: the directories and resolv.conf of
§5.4, then it execs systemd-nspawn with the command line built from the conf, so nspawn is the
unit's main process and its READY=1 (--notify-ready=yes) is what Type=notify waits for.
"""

import os
import subprocess
import sys

from . import common, startscript

EXEC = "%s/container-unit" % common.EMULATOR_DIR
PYTHON = "/usr/bin/python3"


EPHEMERAL_DIR = "/run/nixos-containers"
# The part of the ephemeral root's path systemd's RuntimeDirectory= takes (below /run).
EPHEMERAL_RUNTIME_DIRECTORY = "nixos-containers/%i"


def service_lines(timeout_start="1min", device_allow=(), nspawn_flags=(), ephemeral=False, extra_veths=""):
    """The [Service] section shared by the template and the declarative units (facts §5.2).

    An ephemeral container's root is /run/nixos-containers/NAME, a RuntimeDirectory systemd
    makes at start and removes at stop; EXTRA_VETHS is what :func:`encode_veths` gives."""
    root = EPHEMERAL_DIR if ephemeral else common.STATE_DIR
    lines = ["[Service]",
             "Environment=\"root=%s/%%i\" \"INSTANCE=%%i\"" % root,
             "EnvironmentFile=-%s/%%i.conf" % common.CONF_DIR]
    if nspawn_flags:
        lines.append("Environment=\"NIXLAB_NSPAWN_FLAGS=%s\"" % " ".join(nspawn_flags))
    if extra_veths:
        lines.append("Environment=\"NIXLAB_EXTRA_VETHS=%s\"" % extra_veths)
    if ephemeral:
        lines.append("RuntimeDirectory=" + EPHEMERAL_RUNTIME_DIRECTORY)
    lines += ["Type=notify",
              "ExecStartPre=%s %s pre-start %%i" % (PYTHON, EXEC),
              "ExecStart=%s %s start %%i" % (PYTHON, EXEC),
              "ExecStartPost=%s %s post-start %%i" % (PYTHON, EXEC),
              "ExecReload=%s %s reload %%i" % (PYTHON, EXEC),
              "TimeoutStartSec=%s" % timeout_start,
              "Restart=on-failure",
              "RestartForceExitStatus=133",
              "SuccessExitStatus=133",
              "Slice=machine.slice",
              "Delegate=yes",
              "KillMode=mixed",
              "KillSignal=TERM",
              "DevicePolicy=closed"]
    lines += ["DeviceAllow=%s" % device for device in device_allow]
    lines.append("SyslogIdentifier=container %i")
    return lines


def template_text():
    """The imperative template: a dummy container's options (no devices, 1min, not ephemeral)."""
    return "\n".join(["# container@.service of the lab's NixOS hosts (facts §5)", "[Unit]",
                      "Description=Container '%i'",
                      "RequiresMountsFor=%s/%%i" % common.STATE_DIR]
                     + service_lines()) + "\n"


def declarative_text(c, nspawn_flags):
    """container@NAME.service as NixOS generates it for containers.NAME (overrides the template)."""
    lines = ["# container@%s.service of a declarative container" % c["name"], "[Unit]",
             "Description=Container '%i'"]
    mounts = [common.STATE_DIR + "/%i"] if not c["ephemeral"] else []
    lines.append("RequiresMountsFor=%s" % " ".join(mounts + [m["hostPath"] for m in bind_mounts(c)]))
    if c["autoStart"]:
        lines += ["Wants=network.target", "After=network.target"]
    lines += service_lines(c["timeoutStartSec"] or "1min",
                           ["/dev/net/tun rwm"] if c["enableTun"] else [], nspawn_flags,
                           ephemeral=c["ephemeral"], extra_veths=encode_veths(c.get("extraVeths") or {}))
    if c["autoStart"]:
        lines += ["[Install]", "WantedBy=machines.target"]
    return "\n".join(lines) + "\n"


# The fields of an extra veth the unit uses (facts §5.3-§5.6; localMacAddress is ignored, #531758).
VETH_FIELDS = ("hostBridge", "hostAddress", "hostAddress6", "localAddress", "localAddress6")


def encode_veths(veths):
    """containers.NAME.extraVeths as one environment word per veth: NAME,field=value,..."""
    return " ".join(",".join([name] + ["%s=%s" % (f, veths[name][f]) for f in VETH_FIELDS if veths[name].get(f)])
                    for name in sorted(veths))


def decode_veths(text):
    veths = []
    for word in text.split():
        name, *fields = word.split(",")
        veth = dict((f, None) for f in VETH_FIELDS)
        veth.update(field.split("=", 1) for field in fields)
        veths.append((name, veth))
    return veths


def veth_pre_start(veths):
    """preStart: delete each extra veth's stale host interface, ignoring errors."""
    for name, _veth in veths:
        subprocess.run([startscript.IP, "link", "del", "dev", name], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=False)


def veth_post_start(veths):
    """postStart: the host side of each extra veth (bridge port, or addresses and routes)."""
    for name, veth in veths:
        if veth["hostBridge"]:
            startscript.run_logged([startscript.IP, "link", "set", "dev", name, "master", veth["hostBridge"], "up"])
            continue
        startscript.run_logged([startscript.IP, "link", "set", "dev", name, "up"])
        for argv, key in ((["addr", "add"], "hostAddress"), (["-6", "addr", "add"], "hostAddress6"),
                          (["route", "add"], "localAddress"), (["-6", "route", "add"], "localAddress6")):
            if veth[key]:
                startscript.run_logged([startscript.IP] + argv + [veth[key], "dev", name])


def nspawn_argv(name, conf, root, unit_flags, veths_text):
    """The command line: the conf's (facts §5.4), this unit's own flags, its root and its veths."""
    argv = startscript.nspawn_argv(name, conf, root)
    if "--ephemeral" in unit_flags:
        argv.remove("--link-journal=try-guest")     # NixOS links no journal of an ephemeral container
    veths = decode_veths(veths_text)
    own = ["--network-veth-extra=" + veth_name for veth_name, _veth in veths]
    if veths:
        own.append("--setenv=NIXLAB_EXTRA_VETHS=" + veths_text)     # for the container init
    argv[-2:-2] = own + unit_flags
    return argv


def bind_mounts(c):
    mounts = c.get("bindMounts") or {}
    return [m for m in (mounts.values() if isinstance(mounts, dict) else mounts)
            if isinstance(m, dict) and m.get("hostPath")]


def fail(message):
    sys.stderr.write(message + "\n")
    return 1


def main(argv):
    if len(argv) != 2 or argv[0] not in ("pre-start", "start", "post-start", "reload"):
        return fail("usage: container-unit pre-start|start|post-start|reload NAME")
    verb, name = argv
    conf = common.read_conf(name)
    root = os.environ.get("root") or common.root_path(name)
    veths_text = os.environ.get("NIXLAB_EXTRA_VETHS", "")
    try:
        if verb == "pre-start":
            startscript.pre_start(name, conf)
            veth_pre_start(decode_veths(veths_text))
        elif verb == "start":
            startscript.start_script(name, conf, root)
            argv = nspawn_argv(name, conf, root, os.environ.get("NIXLAB_NSPAWN_FLAGS", "").split(), veths_text)
            env = dict(os.environ, SYSTEMD_NSPAWN_UNIFIED_HIERARCHY="1")
            sys.stdout.flush()
            os.execve(argv[0], argv, env)
        elif verb == "post-start":
            startscript.post_start(name, conf)
            veth_post_start(decode_veths(veths_text))
        else:
            command = "%s/bin/switch-to-configuration test" % startscript.system_dir(conf)
            return subprocess.run([startscript.NIXOS_CONTAINER, "run", name, "--", "sh", "--login", "-c",
                                   command], stdin=subprocess.DEVNULL, check=False).returncode
    except startscript.StartFailure as error:
        return fail("container@%s.service: %s" % (name, error))
    return 0
