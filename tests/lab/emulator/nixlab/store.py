"""The lab's /nix/store: content-named paths, the real Nix parser, and the guest's tools.

A store path here is `/nix/store/<32 nix-base32 chars>-<name>`, the hash being a digest of
what the path stands for. Paths are made in a temporary directory and renamed into place, so
a reader never sees half a store path; once made they are read-only, as in Nix.
"""

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile

from . import common, guestconfig

NIX_BASE32 = "0123456789abcdfghijklmnpqrsvwxyz"
BUSYBOX = "/bin/busybox"
GUEST_DIR = os.path.join(common.PACKAGE_DIR, "guest")
EVAL_CONFIG = os.path.join(common.PACKAGE_DIR, "nix", "eval-config.nix")
STORE_LOCK = "/nix/var/nix/lab-store.lock"


def nix_base32(digest):
    """Nix's base-32 rendering (least significant 5-bit group last)."""
    length = (len(digest) * 8 - 1) // 5 + 1
    chars = []
    for n in range(length - 1, -1, -1):
        bit = n * 5
        i, j = divmod(bit, 8)
        c = digest[i] >> j
        if i + 1 < len(digest):
            c |= digest[i + 1] << (8 - j)
        chars.append(NIX_BASE32[c & 0x1F])
    return "".join(chars)


def store_hash(*parts):
    """sha256 folded to 160 bits, like Nix's compressHash, then nix-base32."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part if isinstance(part, bytes) else part.encode("utf-8", "surrogateescape"))
        digest.update(b"\0")
    folded = bytearray(20)
    for index, byte in enumerate(digest.digest()):
        folded[index % 20] ^= byte
    return nix_base32(bytes(folded))


def store_path(name, *parts):
    return "%s/%s-%s" % (common.STORE_DIR, store_hash(name, *parts), name)


def _make_read_only(top):
    for directory, subdirs, files in os.walk(top):
        for name in files:
            path = os.path.join(directory, name)
            if not os.path.islink(path):
                os.chmod(path, 0o555 if os.access(path, os.X_OK) else 0o444)
        os.chmod(directory, 0o555)


def add_to_store(path, fill):
    """Create store path `path` by calling fill(tmpdir) unless it already exists."""
    if os.path.isdir(path):
        return path
    os.makedirs(common.STORE_DIR, exist_ok=True)
    os.makedirs(os.path.dirname(STORE_LOCK), exist_ok=True)
    with open(STORE_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.isdir(path):
            return path
        tmp = tempfile.mkdtemp(prefix=".lab-tmp-", dir=common.STORE_DIR)
        try:
            os.chmod(tmp, 0o755)
            fill(tmp)
            _make_read_only(tmp)
            os.rename(tmp, path)
        except BaseException:
            _remove_tree(tmp)
            raise
    return path


def _remove_tree(path):
    for directory, subdirs, files in os.walk(path):
        os.chmod(directory, 0o755)
    shutil.rmtree(path, ignore_errors=True)


def _render(template_name, **values):
    """A guest template with its @key@ placeholders filled in.

    The shell templates start with `#!/bin/sh` for shellcheck; that line is dropped here,
    as their callers put the store's busybox sh in front.
    """
    with open(os.path.join(GUEST_DIR, template_name), encoding="utf-8") as handle:
        text = handle.read()
    if text.startswith("#!"):
        text = text.partition("\n")[2]
    for key, value in values.items():
        text = text.replace("@%s@" % key, value)
    return text


def _write(path, text, mode):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, mode)


# ---------------------------------------------------------------- guest tools

def busybox():
    """busybox-static copied into the store with its applet links (the guest's coreutils)."""
    with open(BUSYBOX, "rb") as handle:
        content = handle.read()
    path = store_path("busybox-static-lab", content)

    def fill(tmp):
        os.makedirs(tmp + "/bin")
        with open(tmp + "/bin/busybox", "wb") as out:
            out.write(content)
        os.chmod(tmp + "/bin/busybox", 0o555)
        applets = subprocess.run([BUSYBOX, "--list"], check=True, capture_output=True, text=True)
        for applet in applets.stdout.split():
            if applet != "busybox":
                os.symlink("busybox", "%s/bin/%s" % (tmp, applet))

    return add_to_store(path, fill)


def sd_notify():
    """A static sd_notify client, built once per host with the machine's gcc."""
    source_file = os.path.join(GUEST_DIR, "sd-notify.c")
    with open(source_file, "rb") as handle:
        source = handle.read()
    path = store_path("lab-sd-notify", source)

    def fill(tmp):
        os.makedirs(tmp + "/bin")
        subprocess.run(["gcc", "-static", "-Os", "-s", "-o", tmp + "/bin/sd-notify", source_file],
                       check=True, capture_output=True)

    return add_to_store(path, fill)


def container_init():
    """The wrapper nspawn runs as the container's PID 1 (facts §5.5)."""
    shell = busybox() + "/bin/sh"
    text = _render("container-init.sh", busybox=busybox())
    path = store_path("container-init", text)

    def fill(tmp):
        _write(tmp + "/bin/container-init", "#!%s\n%s" % (shell, text), 0o555)

    add_to_store(path, fill)
    return path + "/bin/container-init"


# ---------------------------------------------------------------- Nix text

def nix_parse(path):
    """Run the real parser; returns (ok, parsed_text, error_text)."""
    done = subprocess.run(["nix-instantiate", "--store", "dummy://", "--parse", path],
                          capture_output=True, text=True, errors="surrogateescape", check=False)
    return done.returncode == 0, done.stdout, done.stderr


def eval_config(file=None, flake=None, attr="container"):
    """Evaluate the stand-in module system; returns (dict or None, error_text)."""
    argv = ["nix-instantiate", "--store", "dummy://", "--eval", "--strict", "--json", EVAL_CONFIG]
    if file is not None:
        argv += ["--arg", "file", file]
    if flake is not None:
        argv += ["--arg", "flake", flake, "--argstr", "attr", attr]
    done = subprocess.run(argv, capture_output=True, text=True, errors="surrogateescape", check=False)
    if done.returncode != 0:
        return None, done.stderr
    return json.loads(done.stdout), ""


# ---------------------------------------------------------------- systems

def build_system(name, fingerprint, services, init="busybox", guest=None):
    """The "toplevel" of a guest: init, switch-to-configuration and the tools it uses.
    INIT "systemd": the systemd guest (its init execs the hosts' Debian systemd, the stand-in
    services are unit files of the system, see systemd_units()). GUEST: eval-config.nix's
    result, whose networking and /etc files the system applies (nixlab.guestconfig)."""
    box = busybox()
    notify = sd_notify()
    system_name = "nixos-system-%s-%s" % (name, common.RELEASE)
    service_list = "".join("%s\n" % s for s in sorted(services))
    path = store_path(system_name, fingerprint, service_list, init, guestconfig.fingerprint(guest),
                      *[_render(t) for t in sorted(os.listdir(GUEST_DIR))])
    values = {"busybox": box, "sdnotify": notify, "system": path, "name": name}
    systemd = init == "systemd"

    def fill(tmp):
        shebang = "#!%s/bin/sh\n" % box
        _write(tmp + "/init", shebang + _render("init-systemd.sh" if systemd else "init.sh", **values), 0o555)
        _write(tmp + "/activate", shebang + _render("activate.sh", **values), 0o555)
        _write(tmp + "/bin/switch-to-configuration",
               shebang + _render("switch-to-configuration-systemd.sh" if systemd
                                 else "switch-to-configuration.sh", **values), 0o555)
        _write(tmp + "/lab-init", init + "\n", 0o444)
        if systemd:
            for unit, text in systemd_units(path, services).items():
                _write(tmp + "/etc/systemd/system/" + unit, text, 0o444)
            _write(tmp + "/bin/lab-start-faults", shebang + _render("start-faults.sh", **values), 0o555)
        _write(tmp + "/bin/lab-http", shebang + _render("http.sh", **values), 0o555)
        _write(tmp + "/bin/lab-ssh", shebang + _render("ssh.sh", **values), 0o555)
        _write(tmp + "/bin/lab-pid1", shebang + _render("pid1.sh", **values), 0o555)
        _write(tmp + "/bin/lab-network", shebang + _render("network.sh", **values), 0o555)
        guestconfig.write(tmp, guest)
        _write(tmp + "/lab-services", service_list, 0o444)
        _write(tmp + "/nixos-version", common.RELEASE + "\n", 0o444)
        os.makedirs(tmp + "/sw/bin")
        for applet in os.listdir(box + "/bin"):
            os.symlink("%s/bin/%s" % (box, applet), "%s/sw/bin/%s" % (tmp, applet))

    return add_to_store(path, fill)


def systemd_units(system, services):
    """The systemd guest's own units (NixOS links /etc/systemd/system into the system): the HTTP
    stand-in as a socket-activated service, and the lab's start faults before multi-user.target,
    so the guest's READY=1 (the end of its boot) waits for them."""
    units = {"lab-start-faults.service": "\n".join([
        "[Unit]", "Description=The lab's start faults of this container",
        "Before=multi-user.target", "[Service]", "Type=oneshot", "RemainAfterExit=yes",
        "ExecStart=%s/bin/lab-start-faults" % system, "[Install]", "WantedBy=multi-user.target", ""])}
    if "http" in services:
        units["lab-http.socket"] = "\n".join([
            "[Unit]", "Description=HTTP stand-in (nginx/httpd) of the lab", "[Socket]",
            "ListenStream=80", "Accept=yes", "[Install]", "WantedBy=sockets.target", ""])
        units["lab-http@.service"] = "\n".join([
            "[Unit]", "Description=HTTP stand-in, one exchange", "[Service]",
            "ExecStart=%s/bin/lab-http" % system, "StandardInput=socket", "StandardOutput=socket",
            "StandardError=journal", ""])
    return units


def is_store_dir(path):
    """True for /nix/store/<hash>-<name> that exists as a directory."""
    if not path.startswith(common.STORE_DIR + "/"):
        return False
    rest = path[len(common.STORE_DIR) + 1:].rstrip("/")
    return "/" not in rest and len(rest) > 33 and rest[32] == "-" and os.path.isdir(path)
