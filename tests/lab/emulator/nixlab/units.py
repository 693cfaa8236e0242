"""`container@NAME.service` of the lab: state, the runner that plays the unit (facts §5), and
the operations systemctl and machinectl need.

State lives in /run/nixos-lab/units/<unit>.json, changed only under the unit's lock file.
`start` daemonises a runner (double fork, setsid) that does what the unit does: preStart,
the start script, the real systemd-nspawn (Type=notify: it waits for READY=1 on its own
NOTIFY_SOCKET), postStart, and then watches nspawn until it exits.
"""

import contextlib
import fcntl
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid

from . import common, store

TEMPLATE_RE = re.compile(r"^container@(.+)\.service$")
TIMEOUT_START = 60.0          # TimeoutStartSec=1min of the imperative template
TIMEOUT_STOP = 90.0           # systemd's default TimeoutStopSec
SUCCESS_EXIT = (0, 133)       # SuccessExitStatus=133 (a reboot inside the guest)
IP = "/usr/sbin/ip"
NSPAWN = "/usr/bin/systemd-nspawn"
NIXOS_CONTAINER = os.path.join(common.EMULATOR_DIR, "nixos-container")
MACHINECTL = "/usr/bin/machinectl" if common.REAL_SYSTEMD else os.path.join(common.EMULATOR_DIR, "machinectl")

DEFAULT_STATE = {
    "ActiveState": "inactive", "SubState": "dead", "Result": "success", "ReloadResult": "success",
    "MainPID": 0, "ExecMainPID": 0, "ExecMainStatus": 0, "ExecMainCode": 0, "ControlPID": 0,
    "NRestarts": 0, "Leader": 0, "RunnerPID": 0, "InvocationID": "", "StatusText": "",
    "ActiveEnterTimestamp": 0, "ActiveExitTimestamp": 0, "InactiveEnterTimestamp": 0,
    "InactiveExitTimestamp": 0, "StateChangeTimestamp": 0, "ExecMainStartTimestamp": 0,
    "ExecMainExitTimestamp": 0,
}


class StartFailure(Exception):
    """A step of the unit failed (the job result is exit-code)."""


# ------------------------------------------------------------------ names and state

def normalize(unit):
    """`container@foo` -> `container@foo.service`, as systemctl completes names."""
    if "." not in unit.split("@")[-1] or not re.search(r"\.[a-z]+$", unit):
        return unit + ".service"
    return unit


def instance_of(unit):
    found = TEMPLATE_RE.match(unit)
    return found.group(1) if found and found.group(1) else None


def state_file(unit):
    return "%s/%s.json" % (common.UNITS_DIR, unit)


def journal_file(name):
    return "%s/container@%s.log" % (common.JOURNAL_DIR, name)


@contextlib.contextmanager
def locked(unit):
    os.makedirs(common.UNITS_DIR, exist_ok=True)
    with open("%s/%s.lock" % (common.UNITS_DIR, unit), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def read_state(unit):
    state = dict(DEFAULT_STATE)
    try:
        with open(state_file(unit), encoding="utf-8") as handle:
            state.update(json.load(handle))
    except (FileNotFoundError, ValueError):
        pass
    return state


def write_state(unit, state):
    os.makedirs(common.UNITS_DIR, exist_ok=True)
    common.atomic_write_json(state_file(unit), state)


def now_usec():
    return int(time.time() * 1_000_000)


def set_active_state(state, active, sub):
    """Move the state machine, keeping systemd's transition timestamps."""
    stamp = now_usec()
    before = state["ActiveState"]
    if active == "active" and before != "active" and before != "reloading":
        state["ActiveEnterTimestamp"] = stamp
    if before in ("active", "reloading") and active not in ("active", "reloading"):
        state["ActiveExitTimestamp"] = stamp
    if active in ("inactive", "failed") and before not in ("inactive", "failed"):
        state["InactiveEnterTimestamp"] = stamp
    if before in ("inactive", "failed") and active not in ("inactive", "failed"):
        state["InactiveExitTimestamp"] = stamp
    state["ActiveState"], state["SubState"] = active, sub
    state["StateChangeTimestamp"] = stamp


def update(unit, **changes):
    with locked(unit):
        state = read_state(unit)
        state.update(changes)
        write_state(unit, state)
        return state


def pid_alive(pid):
    if pid <= 0:
        return False
    try:
        with open("/proc/%d/stat" % pid) as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def log(message):
    sys.stdout.write("%s %s\n" % (time.strftime("%b %d %H:%M:%S"), message))
    sys.stdout.flush()


# ------------------------------------------------------------------ what the unit runs

def has_address(conf):
    return any(conf.get(k) for k in ("HOST_ADDRESS", "LOCAL_ADDRESS", "HOST_ADDRESS6", "LOCAL_ADDRESS6"))


def run_logged(argv, check=True):
    done = subprocess.run(argv, stdout=sys.stdout, stderr=sys.stdout, check=False)
    if check and done.returncode != 0:
        raise StartFailure("%s exited with status %d" % (argv[0], done.returncode))
    return done.returncode


def pre_start(name, conf):
    """Facts §5.3."""
    run_logged([MACHINECTL, "terminate", name], check=False)
    if has_address(conf):
        for link in ("ve-" + name, "vb-" + name):
            subprocess.run([IP, "link", "del", link], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=False)


def mkdir_mode(path, mode):
    os.makedirs(path, exist_ok=True)
    os.chmod(path, mode)


def system_dir(conf):
    return conf.get("SYSTEM_PATH") or "/nix/var/nix/profiles/system"


def host_system_dir(name, conf):
    """The system as the host sees it (the profile path is the per-container profile)."""
    if conf.get("SYSTEM_PATH"):
        return conf["SYSTEM_PATH"]
    return os.path.realpath("%s/%s/system" % (common.PROFILES_DIR, name))


def start_script(name, conf):
    """Facts §5.4 steps 1-3 and §2.6."""
    root = common.root_path(name)
    os.makedirs(root + "/etc", exist_ok=True)
    os.makedirs(root + "/var/lib", exist_ok=True)
    mkdir_mode(root + "/var/lib/private", 0o700)
    mkdir_mode(root + "/root", 0o700)
    os.makedirs(root + "/usr/bin", exist_ok=True)
    if not os.path.lexists(root + "/etc/os-release"):
        open(root + "/etc/os-release", "a").close()
    if not os.path.exists(root + "/etc/machine-id"):
        open(root + "/etc/machine-id", "a").close()
    mkdir_mode("/run/nixos-containers", 0o700)
    mkdir_mode("%s/%s" % (common.PROFILES_DIR, name), 0o755)
    mkdir_mode("%s/%s" % (common.GCROOTS_DIR, name), 0o755)
    copy_resolv_conf(root)
    if conf.get("FLAKE") and not os.path.lexists("%s/%s/system" % (common.PROFILES_DIR, name)):
        run_logged([NIXOS_CONTAINER, "update", name])
    lab_host_prerequisites()
    make_ssh_host_key(name, conf, root)
    for ifname in conf.get("INTERFACES", "").split() + conf.get("MACVLANS", "").split():
        mark_udev_initialized(ifname)


def mark_udev_initialized(ifname):
    """Stand-in for the host's udevd: nspawn (whose /sys is writable, so it expects udev) refuses
    an interface udev has not initialized ("Network interface X is not initialized yet"). On
    NixOS udevd records every link in /run/udev/data/n<ifindex>; the lab hosts run no udevd."""
    try:
        with open("/sys/class/net/%s/ifindex" % ifname) as handle:
            ifindex = handle.read().strip()
    except OSError:
        return                          # missing: nspawn says so itself
    os.makedirs("/run/udev/data", exist_ok=True)
    path = "/run/udev/data/n%s" % ifindex
    if not os.path.exists(path):
        with open(path, "w") as handle:
            handle.write("I:%d\n" % int(time.monotonic() * 1000000))


def copy_resolv_conf(root):
    """25.11 module: always `cp --remove-destination /etc/resolv.conf` (facts §5.4, P-13)."""
    target = root + "/etc/resolv.conf"
    if os.path.lexists(target):
        os.unlink(target)
    try:
        shutil.copyfile("/etc/resolv.conf", target)
    except OSError as error:
        raise StartFailure("cp: cannot stat '/etc/resolv.conf': %s" % error.strerror)


def lab_host_prerequisites():
    """Paths every NixOS host has and nspawn binds (the lab's /nix may lack them)."""
    for path in ("/nix/var/nix/db", "/nix/var/nix/daemon-socket", common.FAULTS_DIR):
        os.makedirs(path, exist_ok=True)


def make_ssh_host_key(name, conf, root):
    """Stand-in for the guest's sshd-keygen (the guest has no ssh-keygen)."""
    services_file = host_system_dir(name, conf) + "/lab-services"
    try:
        with open(services_file) as handle:
            wants_ssh = "ssh" in handle.read().split()
    except OSError:
        wants_ssh = False
    key = root + "/etc/ssh/ssh_host_ed25519_key"
    if wants_ssh and not os.path.exists(key):
        os.makedirs(root + "/etc/ssh", exist_ok=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "root@" + name,
                        "-f", key], check=False, stdout=subprocess.DEVNULL)


def nspawn_argv(name, conf):
    """The command line of facts §5.4 plus the lab's --register=no and faults bind."""
    root = common.root_path(name)
    flags = []
    if conf.get("PRIVATE_NETWORK") == "1":
        flags.append("--private-network")
    idmap = ""
    users = conf.get("PRIVATE_USERS", "")
    if users:
        flags.append("--private-users=" + users)
        if users == "pick" or (users.isdigit() and int(users) > 0):
            idmap = ":idmap"
    if has_address(conf) or conf.get("LOCAL_MAC_ADDRESS"):
        flags.append("--network-veth")
    for item in filter(None, conf.get("HOST_PORT", "").split(",")):
        flags.append("--port=" + item)
    if conf.get("HOST_BRIDGE"):
        flags.append("--network-bridge=" + conf["HOST_BRIDGE"])
    if conf.get("NETWORK_NAMESPACE_PATH"):
        flags.append("--network-namespace-path=" + conf["NETWORK_NAMESPACE_PATH"])
    for interface in conf.get("INTERFACES", "").split():
        flags.append("--network-interface=" + interface)
    for macvlan in conf.get("MACVLANS", "").split():
        flags.append("--network-macvlan=" + macvlan)
    # the real unit registers the machine with machined (facts §5.4); the emulated one cannot
    register = [] if common.REAL_SYSTEMD else ["--register=no"]
    argv = [NSPAWN, "--keep-unit"] + register + ["-M", name, "-D", root] + flags
    argv += ["--notify-ready=yes", "--kill-signal=SIGRTMIN+3",
             "--bind-ro=/nix/store", "--bind-ro=/nix/var/nix/db",
             "--bind-ro=/nix/var/nix/daemon-socket",
             "--bind=%s/%s:/nix/var/nix/profiles%s" % (common.PROFILES_DIR, name, idmap),
             "--bind=%s/%s:/nix/var/nix/gcroots%s" % (common.GCROOTS_DIR, name, idmap),
             "--link-journal=try-guest"]
    for key in ("PRIVATE_NETWORK", "PRIVATE_USERS", "HOST_BRIDGE", "HOST_ADDRESS", "LOCAL_ADDRESS",
                "HOST_ADDRESS6", "LOCAL_ADDRESS6", "HOST_PORT"):
        argv.append("--setenv=%s=%s" % (key, conf.get(key, "")))
    if conf.get("LOCAL_MAC_ADDRESS"):
        argv.append("--setenv=LOCAL_MAC_ADDRESS=" + conf["LOCAL_MAC_ADDRESS"])
    argv.append("--setenv=PATH=%s/bin" % store.busybox())
    argv.append("--bind-ro=%s" % common.FAULTS_DIR)          # lab only: fault switches
    argv += conf.get("EXTRA_NSPAWN_FLAGS", "").split()
    argv += [store.container_init(), system_dir(conf) + "/init"]
    return argv


def post_start(name, conf):
    """Facts §5.6: host side of the veth, only after READY and only when not bridged."""
    if not has_address(conf) or conf.get("HOST_BRIDGE"):
        return
    link = "ve-" + name
    run_logged([IP, "link", "set", "dev", link, "up"])
    if conf.get("HOST_ADDRESS"):
        run_logged([IP, "addr", "add", conf["HOST_ADDRESS"], "dev", link])
    if conf.get("HOST_ADDRESS6"):
        run_logged([IP, "-6", "addr", "add", conf["HOST_ADDRESS6"], "dev", link])
    if conf.get("LOCAL_ADDRESS"):
        run_logged([IP, "route", "add", conf["LOCAL_ADDRESS"], "dev", link])
    if conf.get("LOCAL_ADDRESS6"):
        run_logged([IP, "-6", "route", "add", conf["LOCAL_ADDRESS6"], "dev", link])


# ------------------------------------------------------------------ the runner

def notify_socket(unit):
    path = "%s/%s.notify" % (common.UNITS_DIR, unit)
    if os.path.exists(path):
        os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    return sock, path


def find_leader(nspawn_pid):
    """The container's PID 1 is nspawn's child (its inner child exits after setup)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == nspawn_pid:
            return int(entry)
    return 0


def finish(unit, active, sub, result, **changes):
    with locked(unit):
        state = read_state(unit)
        set_active_state(state, active, sub)
        state["Result"] = result
        state.update(MainPID=0, Leader=0, RunnerPID=0, ControlPID=0)
        state.update(changes)
        write_state(unit, state)


def stop_requested(unit):
    return read_state(unit)["ActiveState"] == "deactivating"


def terminate_nspawn(proc, timeout=TIMEOUT_STOP):
    """SIGTERM (nspawn forwards SIGRTMIN+3), then SIGKILL after the stop timeout."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def exit_result(status):
    if status < 0:
        return "signal", 2, -status
    return "exit-code", 1, status


def wait_for_ready(unit, proc, sock, leader_hint):
    """Returns ("ready"|"exited"|"stop"|"timeout", leader)."""
    deadline = time.monotonic() + TIMEOUT_START
    leader = leader_hint
    while True:
        if proc.poll() is not None:
            return "exited", leader
        if stop_requested(unit):
            return "stop", leader
        if time.monotonic() > deadline:
            return "timeout", leader
        readable = select.select([sock], [], [], 0.1)[0]
        if not readable:
            continue
        message = sock.recv(4096).decode("utf-8", "replace")
        fields = dict(line.split("=", 1) for line in message.splitlines() if "=" in line)
        if fields.get("X_NSPAWN_LEADER_PID", "").isdigit():
            leader = int(fields["X_NSPAWN_LEADER_PID"])
            update(unit, Leader=leader)
        if "STATUS" in fields:
            update(unit, StatusText=fields["STATUS"])
        if fields.get("READY") == "1":
            return "ready", leader


CGROUP_ROOT = "/sys/fs/cgroup"
UNITS_SUFFIX = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def memory_bytes(value):
    if value == "infinity":
        return "max"
    if value[-1] in UNITS_SUFFIX:
        return str(int(value[:-1]) * UNITS_SUFFIX[value[-1]])
    return value


# Drop-in property -> (controller, cgroup2 file, value converter), systemd.resource-control(5).
LIMIT_FILES = {
    "CPUQuota": ("cpu", "cpu.max", lambda v: "%d 100000" % round(float(v.rstrip("%")) * 1000)),
    "MemoryMax": ("memory", "memory.max", memory_bytes),
    "TasksMax": ("pids", "pids.max", lambda v: "max" if v == "infinity" else v),
}


def unit_cgroup(unit):
    """The unit's cgroup (Slice=machine.slice, Delegate=yes: nspawn runs in it, facts §5.2),
    with the limits of its drop-ins written where the host's cgroup2 has the controller."""
    properties, _paths = common.unit_dropin_properties(unit)
    slice_dir = os.path.join(CGROUP_ROOT, "machine.slice")
    path = os.path.join(slice_dir, unit)
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as error:
        log("%s: no cgroup (%s): limits not applied" % (unit, error))
        return None
    available = set(read_first(os.path.join(CGROUP_ROOT, "cgroup.controllers")).split())
    for key, (controller, filename, convert) in sorted(LIMIT_FILES.items()):
        if key not in properties:
            continue
        if controller not in available:
            listed = " ".join(sorted(available)) or "none"
            log("%s: %s=%s not applied: the %s controller is not available in this cgroup2 "
                "hierarchy (cgroup.controllers: %s)" % (unit, key, properties[key], controller, listed))
            continue
        try:
            for directory in (CGROUP_ROOT, slice_dir):
                with open(os.path.join(directory, "cgroup.subtree_control"), "w") as handle:
                    handle.write("+" + controller)
            with open(os.path.join(path, filename), "w") as handle:
                handle.write(convert(properties[key]))
            log("%s: %s=%s -> %s" % (unit, key, properties[key], filename))
        except (OSError, ValueError) as error:
            log("%s: %s=%s not applied: %s" % (unit, key, properties[key], error))
    return path


def read_first(path):
    try:
        with open(path, encoding="ascii") as handle:
            return handle.read()
    except OSError:
        return ""


def enter_cgroup(path):
    def preexec():
        if path:
            try:
                with open(os.path.join(path, "cgroup.procs"), "w", encoding="ascii") as procs:
                    procs.write("0")
            except OSError:
                pass
    return preexec


def remove_unit_cgroup(unit):
    try:
        os.rmdir(os.path.join(CGROUP_ROOT, "machine.slice", unit))
    except OSError:
        pass


def run_unit(name):
    """Body of the daemonised runner: one activation of container@NAME.service."""
    unit = "container@%s.service" % name
    update(unit, RunnerPID=os.getpid())
    log("Starting Container '%s'..." % name)
    conf = common.read_conf(name)
    try:
        pre_start(name, conf)
        start_script(name, conf)
        argv = nspawn_argv(name, conf)
    except (StartFailure, OSError, subprocess.CalledProcessError) as error:
        log("%s: start failed: %s" % (unit, error))
        finish(unit, "failed", "failed", "exit-code")
        return
    if stop_requested(unit):
        finish(unit, "inactive", "dead", "success")
        return
    sock, sock_path = notify_socket(unit)
    env = dict(os.environ, NOTIFY_SOCKET=sock_path, SYSTEMD_NSPAWN_UNIFIED_HIERARCHY="1")
    log("exec " + " ".join(argv))
    cgroup = unit_cgroup(unit)
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=sys.stdout,
                            stderr=sys.stdout, preexec_fn=enter_cgroup(cgroup))
    update(unit, MainPID=proc.pid, ExecMainPID=proc.pid, ExecMainStartTimestamp=now_usec())
    try:
        outcome, leader = wait_for_ready(unit, proc, sock, 0)
    finally:
        sock.close()
        os.unlink(sock_path)
    if outcome == "timeout":
        log("%s: start operation timed out. Terminating." % unit)
        status = terminate_nspawn(proc)
        finish(unit, "failed", "failed", "timeout", ExecMainStatus=max(status, 0))
        return
    if outcome in ("exited", "stop"):
        status = terminate_nspawn(proc)
        if stop_requested(unit):
            finish(unit, "inactive", "dead", "success", ExecMainStatus=max(status, 0))
        else:
            result, code, value = exit_result(status)
            log("%s: main process exited, status=%d before READY" % (unit, value))
            finish(unit, "failed", "failed", result, ExecMainCode=code, ExecMainStatus=value)
        return
    leader = leader or find_leader(proc.pid)
    try:
        post_start(name, conf)
    except StartFailure as error:
        log("%s: postStart failed: %s" % (unit, error))
        terminate_nspawn(proc)
        finish(unit, "failed", "failed", "exit-code")
        return
    with locked(unit):
        state = read_state(unit)
        if state["ActiveState"] == "activating":
            set_active_state(state, "active", "running")
            state["Leader"] = leader
            write_state(unit, state)
    log("Started Container '%s'." % name)
    watch(unit, proc)


def watch(unit, proc):
    status = proc.wait()
    remove_unit_cgroup(unit)
    if stop_requested(unit) or status in SUCCESS_EXIT:
        log("%s: deactivated (status=%d)." % (unit, status))
        finish(unit, "inactive", "dead", "success", ExecMainCode=1, ExecMainStatus=max(status, 0),
               ExecMainExitTimestamp=now_usec())
    else:
        result, code, value = exit_result(status)
        log("%s: main process exited, code=%s, status=%d; Failed with result '%s'."
            % (unit, "exited" if code == 1 else "killed", value, result))
        finish(unit, "failed", "failed", result, ExecMainCode=code, ExecMainStatus=value,
               ExecMainExitTimestamp=now_usec())


def daemonise_runner(name):
    """Double fork + setsid; the runner's stdio goes to the unit's journal file."""
    first = os.fork()
    if first:
        os.waitpid(first, 0)
        return
    try:
        os.setsid()
        if os.fork():
            os._exit(0)
        os.makedirs(common.JOURNAL_DIR, exist_ok=True)
        log_fd = os.open(journal_file(name), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        null_fd = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null_fd, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.closerange(3, 1024)
        os.chdir("/")
        sys.stdout = os.fdopen(1, "w", buffering=1)
        sys.stderr = sys.stdout
        run_unit(name)
    except BaseException as error:  # the runner must never return into systemctl's code
        try:
            log("runner crashed: %r" % (error,))
            finish("container@%s.service" % name, "failed", "failed", "resources")
        finally:
            os._exit(1)
    os._exit(0)


# ------------------------------------------------------------------ operations

def wait_until(unit, states, timeout=None):
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        state = read_state(unit)
        if state["ActiveState"] in states:
            return state
        runner = state["RunnerPID"]
        if runner and not pid_alive(runner) and state["ActiveState"] in ("activating", "deactivating"):
            finish(unit, "failed", "failed", "resources")
            return read_state(unit)
        if deadline is not None and time.monotonic() > deadline:
            return state
        time.sleep(0.05)


def start(unit, block=True):
    """Returns the job result: "done" or the unit's failure Result."""
    name = instance_of(unit)
    with locked(unit):
        state = read_state(unit)
        if state["ActiveState"] in ("active", "reloading"):
            return "done"
        spawn = state["ActiveState"] in ("inactive", "failed")
        if spawn:
            set_active_state(state, "activating", "start")
            state.update(Result="success", InvocationID=uuid.uuid4().hex, MainPID=0, Leader=0,
                         RunnerPID=0, StatusText="")
            write_state(unit, state)
    if state["ActiveState"] == "deactivating":
        wait_until(unit, ("inactive", "failed"))
        return start(unit, block)
    if spawn:
        daemonise_runner(name)
    if not block:
        return "done"
    final = wait_until(unit, ("active", "failed", "inactive"))
    return "done" if final["ActiveState"] == "active" else final["Result"]


def reset_failed(unit):
    """A failed unit becomes inactive (dead), as systemctl reset-failed makes it."""
    with locked(unit):
        state = read_state(unit)
        if state["ActiveState"] == "failed":
            set_active_state(state, "inactive", "dead")
            state["Result"] = "success"
            write_state(unit, state)


def stop(unit):
    with locked(unit):
        state = read_state(unit)
        if state["ActiveState"] in ("inactive", "failed"):
            return "done"
        if state["ActiveState"] != "deactivating":
            set_active_state(state, "deactivating", "stop-sigterm")
            write_state(unit, state)
    pid = state["MainPID"]
    if pid and pid_alive(pid):
        os.kill(pid, signal.SIGTERM)
    final = wait_until(unit, ("inactive", "failed"), TIMEOUT_STOP)
    if final["ActiveState"] not in ("inactive", "failed"):
        for victim in (state["Leader"], pid):
            if victim and pid_alive(victim):
                os.kill(victim, signal.SIGKILL)
        final = wait_until(unit, ("inactive", "failed"))
    return "done"


def reload(unit):
    """ExecReload (facts §5.7); returns "done", "invalid" or "exit-code"."""
    name = instance_of(unit)
    with locked(unit):
        state = read_state(unit)
        if state["ActiveState"] != "active":
            return "invalid"
        set_active_state(state, "reloading", "reload")
        write_state(unit, state)
    conf = common.read_conf(name)
    command = "%s/bin/switch-to-configuration test" % system_dir(conf)
    os.makedirs(common.JOURNAL_DIR, exist_ok=True)
    with open(journal_file(name), "a") as journal:
        status = subprocess.run([NIXOS_CONTAINER, "run", name, "--", "sh", "--login", "-c", command],
                                stdin=subprocess.DEVNULL, stdout=journal, stderr=journal,
                                check=False).returncode
    with locked(unit):
        state = read_state(unit)
        if state["ActiveState"] == "reloading":
            set_active_state(state, "active", "running")
        state["ReloadResult"] = "success" if status == 0 else "exit-code"
        write_state(unit, state)
    return "done" if status == 0 else "exit-code"


def machines():
    """Running machines: {name: leader}. Registered while nspawn's container runs."""
    found = {}
    try:
        entries = os.listdir(common.UNITS_DIR)
    except FileNotFoundError:
        return found
    for entry in sorted(entries):
        if not entry.endswith(".service.json"):
            continue
        unit = entry[:-len(".json")]
        name = instance_of(unit)
        state = read_state(unit)
        if name and state["Leader"] and pid_alive(state["Leader"]):
            found[name] = state["Leader"]
    return found
