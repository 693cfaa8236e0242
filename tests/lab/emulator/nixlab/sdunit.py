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


def service_lines(timeout_start="1min", device_allow=(), nspawn_flags=()):
    """The [Service] section shared by the template and the declarative units (facts §5.2)."""
    lines = ["[Service]",
             "Environment=\"root=%s/%%i\" \"INSTANCE=%%i\"" % common.STATE_DIR,
             "EnvironmentFile=-%s/%%i.conf" % common.CONF_DIR]
    if nspawn_flags:
        lines.append("Environment=\"NIXLAB_NSPAWN_FLAGS=%s\"" % " ".join(nspawn_flags))
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
                           ["/dev/net/tun rwm"] if c["enableTun"] else [], nspawn_flags)
    if c["autoStart"]:
        lines += ["[Install]", "WantedBy=machines.target"]
    return "\n".join(lines) + "\n"


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
    try:
        if verb == "pre-start":
            startscript.pre_start(name, conf)
        elif verb == "start":
            startscript.start_script(name, conf)
            argv = startscript.nspawn_argv(name, conf)
            extra = os.environ.get("NIXLAB_NSPAWN_FLAGS", "").split()
            if extra:
                argv[-2:-2] = extra
            env = dict(os.environ, SYSTEMD_NSPAWN_UNIFIED_HIERARCHY="1")
            sys.stdout.flush()
            os.execve(argv[0], argv, env)
        elif verb == "post-start":
            startscript.post_start(name, conf)
        else:
            command = "%s/bin/switch-to-configuration test" % startscript.system_dir(conf)
            return subprocess.run([startscript.NIXOS_CONTAINER, "run", name, "--", "sh", "--login", "-c",
                                   command], stdin=subprocess.DEVNULL, check=False).returncode
    except startscript.StartFailure as error:
        return fail("container@%s.service: %s" % (name, error))
    return 0
