"""The emulated `nixos-container` (facts §1-§4; the newest script's behaviour).

Every message, stdout line and exit status follows facts §1.5; where the Perl script dies
with errno or a child's status, the status observed there is used.
"""

import errno
import fcntl
import os
import re
import subprocess
import sys
import time

from . import common, evaluation, getopt, profiles, store

USAGE = """\
Usage: nixos-container list
       nixos-container create <container-name>
         [--nixos-path <path>]
         [--system-path <path>]
         [--config <string>]
         [--config-file <path>]
         [--flake <flakeref>]
         [--ensure-unique-name]
         [--auto-start]
         [--bridge <iface>]
         [--port <port>]
         [--host-address <string>]
         [--local-address <string>]
         [--use-host-network]
       nixos-container destroy <container-name>
       nixos-container restart <container-name>
       nixos-container start <container-name>
       nixos-container stop <container-name>
       nixos-container terminate <container-name>
       nixos-container status <container-name>
       nixos-container update <container-name>
         [--config <string>]
         [--config-file <path>]
         [--flake <flakeref>]
         [--nixos-path <path>]
         [--refresh]
       nixos-container login <container-name>
       nixos-container root-login <container-name>
       nixos-container run <container-name> -- args...
       nixos-container show-ip <container-name>
       nixos-container show-host-key <container-name>
"""

OPTIONS = [getopt.OptionSpec(name, nargs) for name, nargs in [
    ("help", 0), ("ensure-unique-name", 0), ("auto-start", 0), ("bridge", 1), ("port", 1),
    ("system-path", 1), ("signal", 1), ("nixos-path", 1), ("config", 1), ("config-file", 1),
    ("host-address", 1), ("local-address", 1), ("use-host-network", 0), ("flake", 1),
    # Nix pass-through flags: accepted, forwarded to nothing (the lab has no nix-env).
    ("log-format", 1), ("option", 2), ("impure", 0), ("update-input", 1), ("override-input", 2),
    ("commit-lock-file", 0), ("no-registries", 0), ("no-update-lock-file", 0),
    ("no-write-lock-file", 0), ("no-allow-dirty", 0), ("recreate-lock-file", 0), ("refresh", 0),
]]

NAME_RE = re.compile(r"[a-zA-Z0-9_-]+\n?\Z")   # Perl's `$` also matches before a final newline
ADDRESS_LINE = {key: re.compile(r"^%s=([0-9.]+)$" % key, re.M)
                for key in ("HOST_ADDRESS", "LOCAL_ADDRESS")}
# the lab host's own systemd, as the real script calls them
SYSTEMCTL, MACHINECTL = "/usr/bin/systemctl", "/usr/bin/machinectl"


class Options:
    """The parsed command line, named like the Perl script's variables."""

    def __init__(self, parsed):
        self.parsed = parsed
        self.ensure_unique_name = parsed.given("ensure-unique-name")
        self.auto_start = 1 if parsed.given("auto-start") else 0
        self.bridge = parsed.last("bridge")
        self.port = parsed.last("port")
        self.system_path = parsed.last("system-path")
        self.nixos_path = parsed.last("nixos-path")
        self.extra_config = parsed.last("config")
        self.config_file = parsed.last("config-file")
        self.host_address = parsed.last("host-address")
        self.local_address = parsed.last("local-address")
        self.use_host_network = parsed.given("use-host-network")
        self.flake = parsed.last("flake")
        self.flake_attr = "container"
        self.args = parsed.arguments


def prog():
    return sys.argv[0]


def fail(text, status=255):
    common.die("%s: %s\n" % (prog(), text), status)


# ------------------------------------------------------------------ parsing

def parse_command_line(argv):
    def on_help(result):
        for message in result.errors:
            sys.stderr.write(message)
        sys.stdout.write(USAGE)
        sys.stdout.flush()
        sys.exit(0)

    parsed = getopt.parse(argv, OPTIONS, on_help=on_help)
    if parsed.errors:
        for message in parsed.errors:
            sys.stderr.write(message)
        sys.exit(1)
    return Options(parsed)


def check_global_rules(opts):
    """Facts §1.2 steps 2-6, in order."""
    if (opts.host_address is None) != (opts.local_address is None):
        common.die(common.perl_die_at(
            "With --host-address set, --local-address is required as well!", "address_pair"))
    if opts.use_host_network and (opts.host_address is not None or opts.local_address is not None):
        common.die(common.perl_die_at(
            "--use-host-network cannot be used with --host-address or --local-address!",
            "host_network"))
    action = opts.args[0] if opts.args else None
    if not common.perl_true(action):
        fail("no action specified")
    if opts.config_file is not None and opts.extra_config is not None:
        common.die(common.perl_die_at(
            "--config and --config-file are mutually incompatible. "
            "Please define one or the other, but not both", "config_conflict"))
    split_flake(opts)
    return action


def split_flake(opts):
    if opts.flake is None:
        return
    found = re.match(r'^(.*)#([^#"]+)\Z', opts.flake, re.S)
    if found:
        opts.flake, opts.flake_attr = found.group(1), found.group(2)


# ------------------------------------------------------------------ building

def configuration_text(name, opts):
    """The configuration.nix the newest script writes (facts §2.4)."""
    extra = ""
    if common.perl_true(opts.extra_config):
        extra = opts.extra_config
    elif common.perl_true(opts.config_file):
        extra = "imports = [ %s ];" % os.path.realpath(opts.config_file)
    return ("{ config, lib, pkgs, ... }:\n\n"
            "{ boot.isNspawnContainer = true;\n"
            "  networking.hostName = lib.mkDefault \"%s\";\n"
            "  networking.useDHCP = false;\n"
            "  %s\n"
            "}\n") % (name, extra)


def write_configuration(name, opts):
    path = common.root_path(name) + "/etc/nixos/configuration.nix"
    common.atomic_write(path, configuration_text(name, opts))
    return path


def check_nixos_path(opts):
    """nix-env -f <--nixos-path> fails when the path is missing."""
    if opts.nixos_path is None:
        return True
    path = os.path.abspath(opts.nixos_path)
    if not os.path.exists(path):
        sys.stderr.write("error: getting status of '%s': No such file or directory\n" % path)
        return False
    return True


def build_from_file(name, config_file):
    """nix-env's evaluation of <nixpkgs/nixos> with CONFIG_FILE and the build (charged and
    logged: nixlab.evaluation); returns a store path or None."""
    return evaluation.charged("build", name, config_file, lambda: evaluate_and_build(name, config_file))


def evaluate_and_build(name, config_file):
    """Parse (real parser) and evaluate the configuration; returns a store path or None."""
    ok, parsed, error = store.nix_parse(config_file)
    if not ok:
        sys.stderr.write(error)
        return None
    fingerprint = [parsed]
    evaluated, error = store.eval_config(file=config_file)
    if evaluated is None:
        sys.stderr.write(error)
        return None
    for imported in imported_files(config_file):
        ok, parsed_import, error = store.nix_parse(imported)
        if not ok:
            sys.stderr.write(error)
            return None
        fingerprint.append(parsed_import)
    return store.build_system(name, "\n".join(fingerprint), services_of(evaluated), init_of(evaluated), evaluated)


def imported_files(config_file):
    """Absolute paths named in `imports = [ ... ];` of the generated file."""
    with open(config_file, encoding="utf-8", errors="surrogateescape") as handle:
        text = handle.read()
    found = re.search(r"imports = \[ (/[^ \]]+) \];", text)
    return [found.group(1)] if found and os.path.isfile(found.group(1)) else []


def init_of(evaluated):
    """The guest's init: busybox (the fast default) or systemd (`lab.systemdGuest = true;`)."""
    return "systemd" if evaluated.get("systemdGuest") else "busybox"


def services_of(evaluated):
    services = []
    if evaluated.get("http"):
        services.append("http")
    if evaluated.get("ssh"):
        services.append("ssh")
    return services


def flake_dir(flake):
    """Local flake references only: `path:/dir`, `/dir`, `./dir`, `.`."""
    ref = flake[len("path:"):] if flake.startswith("path:") else flake
    ref = ref.split("?", 1)[0]
    if not ref or not (ref.startswith("/") or ref.startswith(".")):
        return None
    return os.path.abspath(ref)


def eval_flake(opts):
    directory = flake_dir(opts.flake)
    if directory is None or not os.path.isfile(directory + "/flake.nix"):
        sys.stderr.write("error: cannot find flake '%s' in the lab (only local flakes exist here)\n"
                         % opts.flake)
        return None, None
    ok, parsed, error = store.nix_parse(directory + "/flake.nix")
    if not ok:
        sys.stderr.write(error)
        return None, None
    evaluated, error = store.eval_config(flake=directory, attr=opts.flake_attr)
    if evaluated is None:
        sys.stderr.write(error)
        return None, None
    return evaluated, parsed


def build_flake(name, opts):
    """`nix build -o .tmp …`: returns the store path; leaves `.tmp` in the cwd (P-12)."""
    evaluated, parsed = evaluation.charged("build", name, "%s#%s" % (opts.flake, opts.flake_attr),
                                           lambda: eval_flake(opts))
    if evaluated is None:
        fail("failed to build container from flake '%s'" % opts.flake, 1)
    path = store.build_system(name, parsed + "\n#" + opts.flake_attr, services_of(evaluated),
                              init_of(evaluated), evaluated)
    try:
        if os.path.islink(".tmp"):
            os.unlink(".tmp")
        os.symlink(path, ".tmp")
    except OSError:
        pass
    return path


def set_system(profile_dir, system_path):
    """nix-env -p …/system --set P; prints nix's error and returns False on failure."""
    if not system_path.startswith(common.STORE_DIR + "/"):
        sys.stderr.write("error: path '%s' is not in the Nix store\n" % system_path)
        return False
    if not store.is_store_dir(system_path):
        sys.stderr.write("error: path '%s' is not a valid store path\n" % system_path)
        return False
    profiles.set_profile(profile_dir + "/system", system_path.rstrip("/"))
    return True


# ------------------------------------------------------------------ removal

def safe_remove_tree(path):
    """Unmount what is mounted below path, then remove it without crossing filesystems."""
    subprocess.run(["find", path, "-mindepth", "1", "-xdev",
                    "(", "-type", "d", "-exec", "mountpoint", "-q", "{}", ";", ")",
                    "-exec", "umount", "-fR", "{}", "+"], stderr=subprocess.DEVNULL, check=False)
    subprocess.run(["rm", "--one-file-system", "-rf", path], check=False)
    if os.path.lexists(path):
        subprocess.run(["umount", "-fR", path], stderr=subprocess.DEVNULL, check=False)
        subprocess.run(["rm", "--one-file-system", "-rf", path], check=False)


def clear_container_state(profile_dir, gcroots_dir, root, conf):
    for path in (profile_dir, gcroots_dir):
        if os.path.exists(path):
            safe_remove_tree(path)
    if os.path.exists(root + "/var/empty"):
        subprocess.run(["chattr", "-i", root + "/var/empty"], stderr=subprocess.DEVNULL, check=False)
    if os.path.exists(root):
        safe_remove_tree(root)
    try:
        os.unlink(conf)
    except OSError:
        common.die(common.perl_die_at("Died", "clear_state_unlink"))


# ------------------------------------------------------------------ create

def take_create_lock():
    try:
        lock = open(common.LOCK_FILE, "a")
    except OSError as error:
        common.die(common.perl_die_at("%s: opening %s: %s" % (
            prog(), common.LOCK_FILE, os.strerror(error.errno)), "lock_open"), error.errno)
    fcntl.flock(lock, fcntl.LOCK_EX)
    return lock


def unique_name(name):
    base, number = name, 0
    while os.path.exists(common.conf_path(name)) or os.path.exists(common.root_path(name)):
        name = "%s-%d" % (base, number)
        number += 1
    return name


def used_addresses():
    """Facts §4: only exact `KEY=digits.dots` lines of every conf count."""
    used = set()
    for conf in sorted_confs():
        try:
            with open(conf, encoding="utf-8", errors="surrogateescape") as handle:
                text = handle.read()
        except OSError:
            text = ""
        if not common.perl_true(text):
            common.die(common.perl_die_at("Died", "ip_scan_read"))
        for pattern in ADDRESS_LINE.values():
            found = pattern.search(text)
            if found:
                used.add(found.group(1))
    return used


def allocate(used):
    for n in range(1, 255):
        host, local = "10.233.%d.1" % n, "10.233.%d.2" % n
        if host not in used and local not in used:
            return host, local
    fail("out of IP addresses")


def conf_lines(opts, host, local):
    lines = []
    if opts.use_host_network:
        lines.append("PRIVATE_NETWORK=0\n")
    else:
        lines += ["PRIVATE_NETWORK=1\n", "HOST_ADDRESS=%s\n" % host, "LOCAL_ADDRESS=%s\n" % local]
    lines += ["HOST_BRIDGE=%s\n" % (opts.bridge or ""), "HOST_PORT=%s\n" % (opts.port or ""),
              "AUTO_START=%d\n" % opts.auto_start]
    if opts.flake is not None:
        lines.append("FLAKE=%s\n" % opts.flake)
    return "".join(lines)


def action_create(name, opts):
    lock = take_create_lock()
    if opts.ensure_unique_name:
        name = unique_name(name)
    conf = common.conf_path(name)
    root = common.root_path(name)
    if os.path.exists(conf):
        fail("container \u2018%s\u2019 already exists" % name, errno.ENOTTY)
    if len(name) > 11:
        fail("container name \u2018%s\u2019 is too long" % name, errno.ENOENT)
    host, local = opts.host_address, opts.local_address
    if opts.use_host_network:
        sys.stderr.write("using host network\n")
    else:
        used = used_addresses()
        if host is None:
            host, local = allocate(used)
        sys.stderr.write("host IP is %s, container IP is %s\n" % (host, local))
    common.atomic_write(conf, conf_lines(opts, host, local), 0o644)
    lock.close()

    common.makedirs(common.PROFILES_DIR, 0o700)
    profile_dir = "%s/%s" % (common.PROFILES_DIR, name)
    common.makedirs(profile_dir, 0o755)
    wrong_gcroots = "%s/%s" % (profile_dir, name)   # the script passes this path (facts §1.3.1)

    system_path = opts.system_path
    if opts.flake is not None:
        system_path = build_flake(name, opts)
    if system_path is not None:
        if not set_system(profile_dir, system_path):
            clear_container_state(profile_dir, wrong_gcroots, root, conf)
            fail("failed to set initial container configuration", errno.ENOENT)
    else:
        common.makedirs(root + "/etc/nixos", 0o755)
        config_file = write_configuration(name, opts)
        built = build_from_file(name, config_file) if check_nixos_path(opts) else None
        if built is None or not set_system(profile_dir, built):
            clear_container_state(profile_dir, wrong_gcroots, root, conf)
            fail("failed to build initial container configuration", errno.ENOENT)
    if opts.ensure_unique_name:
        sys.stdout.write(name + "\n")
    return 0


# ------------------------------------------------------------------ helpers on an existing container

def sorted_confs():
    try:
        entries = sorted(os.listdir(common.CONF_DIR))
    except FileNotFoundError:
        return []
    return ["%s/%s" % (common.CONF_DIR, e) for e in entries
            if e.endswith(".conf") and not e.startswith(".")]


def get_leader(name):
    done = subprocess.run([MACHINECTL, "show", name, "-p", "Leader"],
                          stdout=subprocess.PIPE, text=True, check=False)
    found = re.match(r"^Leader=(\d+)\n?\Z", done.stdout)
    if not found:
        common.die("unable to get container's main PID\n", 1)
    return int(found.group(1))


def is_running(name):
    done = subprocess.run([SYSTEMCTL, "show", "container@%s" % name],
                          stdout=subprocess.PIPE, text=True, check=False)
    return "ActiveState=active" in done.stdout


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def terminate(name):
    leader = get_leader(name)
    if subprocess.run([MACHINECTL, "terminate", name], check=False).returncode != 0:
        fail("failed to terminate container", 1)
    while pid_alive(leader):
        time.sleep(0.1)


def systemctl_or_die(verb, name, message):
    status = subprocess.run([SYSTEMCTL, verb, "container@%s" % name], check=False).returncode
    if status != 0:
        fail(message, status if status < 256 else 255)


def run_in_container(name, argv):
    leader = get_leader(name)
    su = store.busybox() + "/bin/su"
    try:
        os.execv("/usr/bin/nsenter", ["/usr/bin/nsenter", "--all", "-t", str(leader), "--", su] + argv)
    except OSError as error:
        common.die("cannot run \u2018nsenter\u2019: %s\n" % os.strerror(error.errno), error.errno)


def shell_quote_words(words):
    return " ".join("'%s'" % w.replace("'", "'\\''") for w in words)


def is_declarative(conf):
    """Declarative confs are symlinks into the read-only store (facts §2.3).

    Root passes access(W_OK) on any file of a writable filesystem, so a symlink whose
    target has no write bit also counts as read-only here (the lab's store is writable).
    """
    if not os.access(conf, os.W_OK):
        return True
    if os.path.islink(conf):
        return not (os.stat(conf).st_mode & 0o222)
    return False


# ------------------------------------------------------------------ actions

def action_destroy(name):
    conf = common.conf_path(name)
    if is_declarative(conf):
        fail("cannot destroy declarative container (remove it from your configuration.nix instead)",
             errno.EROFS)
    if is_running(name):
        terminate(name)
    clear_container_state("%s/%s" % (common.PROFILES_DIR, name),
                          "%s/%s" % (common.GCROOTS_DIR, name), common.root_path(name), conf)
    return 0


def action_update(name, opts):
    conf = common.conf_path(name)
    profile_dir = "%s/%s" % (common.PROFILES_DIR, name)
    if opts.flake is None and opts.config_file is None and opts.extra_config is None:
        with open(conf, encoding="utf-8", errors="surrogateescape") as handle:
            found = re.search(r"^FLAKE=(.*)$", handle.read(), re.M)
        opts.flake = found.group(1) if found else None
    if opts.flake is not None:
        update_from_flake(name, opts, profile_dir)
    else:
        update_from_file(name, opts, profile_dir)
    if is_running(name):
        sys.stderr.write("reloading container...\n")
        systemctl_or_die("reload", name, "failed to reload container")
    return 0


def update_from_flake(name, opts, profile_dir):
    evaluated = evaluation.charged("check", name, "%s#%s" % (opts.flake, opts.flake_attr),
                                   lambda: eval_flake_quietly(opts))[0]
    if evaluated is not None and not evaluated.get("isNspawnContainer"):
        common.die(common.perl_die_at(
            "%s: on 25.11 and newer, containers require boot.isNspawnContainer=true. "
            "Please set this in %s" % (prog(), opts.flake), "update_flake_nspawn"))
    system_path = build_flake(name, opts)
    if not set_system(profile_dir, system_path):
        fail("failed to set container configuration", 1)


def eval_flake_quietly(opts):
    """`nix eval` for the version check: its errors do not stop the script."""
    saved = sys.stderr
    try:
        sys.stderr = open(os.devnull, "w")
        return eval_flake(opts)
    finally:
        sys.stderr.close()
        sys.stderr = saved


def update_from_file(name, opts, profile_dir):
    config_file = common.root_path(name) + "/etc/nixos/configuration.nix"
    if (opts.extra_config not in (None, "")) or (opts.config_file not in (None, "")):
        write_configuration(name, opts)
    if os.path.isfile(config_file) and store.nix_parse(config_file)[0]:
        evaluated = evaluation.charged("check", name, config_file, lambda: store.eval_config(file=config_file))[0]
        if evaluated is not None and not evaluated.get("isNspawnContainer"):
            common.die(common.perl_die_at(
                "%s: on 25.11 and newer, containers require boot.isNspawnContainer=true. "
                "Refresh your configuration (or check the 25.11 release notes on how to "
                "correctly do that)" % prog(), "update_nspawn"))
    built = None
    if check_nixos_path(opts):
        if os.path.isfile(config_file):
            built = build_from_file(name, config_file)
        else:
            sys.stderr.write("error: getting status of '%s': No such file or directory\n"
                             % config_file)
    if built is None or not set_system(profile_dir, built):
        fail("failed to build container configuration", errno.ENOENT)


def action_show_ip(name):
    with open(common.conf_path(name), encoding="utf-8", errors="surrogateescape") as handle:
        text = handle.read()
    if not common.perl_true(text):
        common.die(common.perl_die_at("Died", "show_ip_read"))
    if re.search(r"^PRIVATE_NETWORK=0$", text, re.M):
        fail("container uses host network, no separate IP address")
    found = (re.search(r"^LOCAL_ADDRESS=([0-9.]+)(/[0-9]+)?$", text, re.M)
             or re.search(r"^LOCAL_ADDRESS6=([0-9a-f:]+)(/[0-9]+)?$", text, re.M))
    if not found:
        fail("cannot get IP address")
    sys.stdout.write(found.group(1) + "\n")
    return 0


def action_show_host_key(name):
    root = common.root_path(name)
    path = root + "/etc/ssh/ssh_host_ed25519_key.pub"
    if not os.path.lexists(path):
        path = root + "/etc/ssh/ssh_host_ecdsa_key.pub"
    if not os.path.isfile(path):
        return 1
    with open(path, "rb") as handle:
        sys.stdout.buffer.write(handle.read())
    return 0


def dispatch(action, name, opts):
    if action == "destroy":
        return action_destroy(name)
    if action == "restart":
        systemctl_or_die("stop", name, "failed to stop container")
        systemctl_or_die("start", name, "failed to start container")
        return 0
    if action == "start":
        systemctl_or_die("start", name, "failed to start container")
        return 0
    if action == "stop":
        systemctl_or_die("stop", name, "failed to stop container")
        return 0
    if action == "terminate":
        terminate(name)
        return 0
    if action == "status":
        sys.stdout.write("up\n" if is_running(name) else "down\n")
        return 0
    if action == "update":
        return action_update(name, opts)
    if action == "login":
        sys.stdout.flush()
        os.execv(MACHINECTL, [MACHINECTL, "login", "--", name])
    if action == "root-login":
        run_in_container(name, ["root", "-l"])
    if action == "run":
        command = "exec " + shell_quote_words(opts.args[2:])
        run_in_container(name, ["root", "-l", "-c", command])
    if action == "show-ip":
        return action_show_ip(name)
    if action == "show-host-key":
        return action_show_host_key(name)
    fail("unknown action \u2018%s\u2019" % action)


def main(argv):
    os.umask(0o022)
    os.environ["NIXOS_CONFIG"] = ""
    opts = parse_command_line(argv)
    action = check_global_rules(opts)
    common.makedirs(common.CONF_DIR, 0o755)
    common.makedirs(common.STATE_DIR, 0o700)
    if action == "list":
        for conf in sorted_confs():
            sys.stdout.write(os.path.basename(conf)[:-len(".conf")] + "\n")
        return 0
    name = opts.args[1] if len(opts.args) > 1 else None
    if not common.perl_true(name):
        fail("no container name specified")
    if not NAME_RE.match(name):
        fail("invalid container name")
    if action == "create":
        return action_create(name, opts)
    if not os.path.exists(common.conf_path(name)):
        if action == "destroy":
            return 0
        if action == "status":
            sys.stdout.write("gone\n")
        fail("container \u2018%s\u2019 does not exist" % name, errno.ENOENT)
    return dispatch(action, name, opts)
