"""The emulated nixos-container's command line against facts §1-§4 (runs in the lab)."""

import re

import pytest

from emulator_helpers import (HOST, PROG, clean_host, describe, nixos_container, ok, python)

DEFAULT_CONF = ("PRIVATE_NETWORK=1\nHOST_ADDRESS=10.233.1.1\nLOCAL_ADDRESS=10.233.1.2\n"
                "HOST_BRIDGE=\nHOST_PORT=\nAUTO_START=0\n")

FILL_ALL_SUBNETS = r'''
for n in range(1, 255):
    with open("/etc/nixos-containers/fill%d.conf" % n, "w") as handle:
        handle.write("HOST_ADDRESS=10.233.%d.1\n" % n)
'''
EMPTY_CONF = 'open("/etc/nixos-containers/empty.conf", "w").close()'
DECLARATIVE_CONF = r'''
import os
target = "/nix/store/0000000000000000000000000000lab0-etc-nixos-containers-decl.conf"
if not os.path.exists(target):
    with open(target, "w") as handle:
        handle.write("SYSTEM_PATH=/nix/store/00000000000000000000000000000000-nixos-system-decl\n"
                     "\nPRIVATE_USERS=no\nINTERFACES=\"\"\nMACVLANS=\"\"\nEXTRA_NSPAWN_FLAGS=\"\"\n")
    os.chmod(target, 0o444)
os.symlink(target, "/etc/nixos-containers/decl.conf")
'''
DROP_NSPAWN_FLAG = r'''
path = "/var/lib/nixos-containers/bar/etc/nixos/configuration.nix"
text = open(path).read().replace("boot.isNspawnContainer = true;", "boot.isContainer = true;")
open(path, "w").write(text)
'''


def at_line(message, line):
    return "%s at %s line %d.\n" % (message, PROG, line)


def err(message):
    return "%s: %s\n" % (PROG, message)


# Facts §1.5, one case per row: (id, setup steps, argv, rc, stdout, stderr).
# A setup step is ("nc", args...) for nixos-container, ("py", code) or ("lab", fault words...).
# stderr None: not compared; a compiled pattern: searched.
ROWS = [
    ("no-arguments", [], [], 255, "", err("no action specified")),
    ("list-empty", [], ["list"], 0, "", ""),
    ("bogus-no-name", [], ["bogus"], 255, "", err("no container name specified")),
    ("status-bad-name", [], ["status", "bad.name"], 255, "", err("invalid container name")),
    ("status-nonexist", [], ["status", "nonexist"], 2, "gone\n",
     err("container \u2018nonexist\u2019 does not exist")),
    ("destroy-nonexist", [], ["destroy", "nonexist"], 0, "", ""),
    ("start-nonexist", [], ["start", "nonexist"], 2, "", err("container \u2018nonexist\u2019 does not exist")),
    ("show-ip-nonexist", [], ["show-ip", "nonexist"], 2, "",
     err("container \u2018nonexist\u2019 does not exist")),
    ("create-too-long", [], ["create", "averyverylongname"], 2, "",
     err("container name \u2018averyverylongname\u2019 is too long")),
    ("create-new", [], ["create", "foo"], 0, "", "host IP is 10.233.1.1, container IP is 10.233.1.2\n"),
    ("create-exists", [("nc", "create", "foo")], ["create", "foo"], 25, "",
     err("container \u2018foo\u2019 already exists")),
    ("create-ensure-unique", [("nc", "create", "foo")], ["create", "foo", "--ensure-unique-name"],
     0, "foo-0\n", "host IP is 10.233.2.1, container IP is 10.233.2.2\n"),
    ("create-addresses", [],
     ["create", "bar", "--host-address", "10.235.1.1", "--local-address", "10.235.1.2/24"], 0, "",
     "host IP is 10.235.1.1, container IP is 10.235.1.2/24\n"),
    ("create-host-address-alone", [], ["create", "x", "--host-address", "10.1.1.1"], 255, "",
     at_line("With --host-address set, --local-address is required as well!", 132)),
    ("create-host-network", [], ["create", "hn", "--use-host-network"], 0, "", "using host network\n"),
    ("create-out-of-addresses", [("py", FILL_ALL_SUBNETS)], ["create", "foo"], 255, "",
     err("out of IP addresses")),
    ("create-build-fails", [], ["create", "broken", "--config", "services.nginx.enable = ;"], 2, "",
     re.compile(r"\Ahost IP is 10\.233\.1\.1, container IP is 10\.233\.1\.2\nerror: syntax error"
                r".*\n%s" % re.escape(err("failed to build initial container configuration")),
                re.S)),
    ("create-empty-conf-exists", [("py", EMPTY_CONF)], ["create", "foo"], 255, "",
     at_line("Died", 257)),
    ("create-unknown-option", [], ["create", "x", "--nosuchopt"], 1, "", "Unknown option: nosuchopt\n"),
    ("show-ip", [("nc", "create", "foo")], ["show-ip", "foo"], 0, "10.233.1.2\n", ""),
    ("show-ip-prefix", [("nc", "create", "bar", "--host-address", "10.235.1.1",
                         "--local-address", "10.235.1.2/24")],
     ["show-ip", "bar"], 0, "10.235.1.2\n", ""),
    ("show-ip-host-network", [("nc", "create", "hn", "--use-host-network")], ["show-ip", "hn"], 255,
     "", err("container uses host network, no separate IP address")),
    ("show-ip-declarative-no-address", [("py", DECLARATIVE_CONF)], ["show-ip", "decl"], 255, "",
     err("cannot get IP address")),
    ("status-inactive", [("nc", "create", "foo")], ["status", "foo"], 0, "down\n", ""),
    ("status-active", [("nc", "create", "foo"), ("nc", "start", "foo")], ["status", "foo"], 0,
     "up\n", ""),
    ("status-activating", [("nc", "create", "foo"), ("lab", "slow-start", "foo", "3"),
                           ("systemctl", "start", "--no-block", "container@foo")],
     ["status", "foo"], 0, "down\n", ""),
    ("start-systemctl-fails", [("nc", "create", "foo"), ("lab", "start-fail", "foo")],
     ["start", "foo"], 1, "",
     "Job for container@foo.service failed because the control process exited with error code.\n"
     'See "systemctl status container@foo.service" and "journalctl -xeu container@foo.service" '
     "for details.\n" + err("failed to start container")),
    ("terminate-not-running", [("nc", "create", "foo")], ["terminate", "foo"], 1, "",
     "Could not get path to machine: No machine 'foo' known\nunable to get container's main PID\n"),
    ("destroy-declarative", [("py", DECLARATIVE_CONF)], ["destroy", "decl"], 30, "",
     err("cannot destroy declarative container (remove it from your configuration.nix instead)")),
    ("update-running", [("nc", "create", "bar"), ("nc", "start", "bar")],
     ["update", "bar", "--config", "services.nginx.enable = true;"], 0, "", "reloading container...\n"),
    ("update-lacks-isNspawnContainer", [("nc", "create", "bar"), ("py", DROP_NSPAWN_FLAG)],
     ["update", "bar"], 255, "",
     at_line("%s: on 25.11 and newer, containers require boot.isNspawnContainer=true. Refresh "
             "your configuration (or check the 25.11 release notes on how to correctly do that)"
             % PROG, 502)),
    ("show-host-key-none", [("nc", "create", "foo")], ["show-host-key", "foo"], 1, "", ""),
    ("bogus-existing", [("nc", "create", "foo")], ["bogus", "foo"], 255, "",
     err("unknown action \u2018bogus\u2019")),
    ("run-without-double-dash", [("nc", "create", "foo")], ["run", "foo", "ls", "-la"], 1, "",
     "Unknown option: la\n"),
    ("help", [], ["--help"], 0, re.compile(r"\AUsage: nixos-container list\n"), ""),
]


@pytest.fixture(scope="module")
def clean_module(lab):
    clean_host(lab)
    return lab


@pytest.fixture
def clean(clean_module):
    """Each test starts on a clean host and leaves one behind."""
    yield clean_module
    clean_host(clean_module)


def run_setup(lab, steps):
    for step in steps:
        if step[0] == "nc":
            ok(lab, "nixos-container", *step[1:])
        elif step[0] == "py":
            python(lab, step[1])
        elif step[0] == "lab":
            lab.fault(HOST, *step[1:])
        else:
            ok(lab, *step)


def matches(expected, actual):
    if expected is None:
        return True
    if isinstance(expected, re.Pattern):
        return expected.search(actual) is not None
    return expected == actual


@pytest.mark.parametrize("row", ROWS, ids=[r[0] for r in ROWS])
def test_observed_table_row(clean, row):
    _row_id, setup, argv, rc, stdout, stderr = row
    run_setup(clean, setup)
    done = nixos_container(clean, *argv)
    assert (done.returncode, matches(stdout, done.stdout), matches(stderr, done.stderr)) == \
        (rc, True, True), (done.returncode, done.stdout, done.stderr)


def test_build_failure_rolls_back_everything(clean):
    done = nixos_container(clean, "create", "broken", "--config", "services.nginx.enable = ;")
    assert done.returncode == 2
    paths = ["/etc/nixos-containers/broken.conf", "/var/lib/nixos-containers/broken",
             "/nix/var/nix/profiles/per-container/broken"]
    assert describe(clean, *paths) == {p: None for p in paths}


# ------------------------------------------------------------------ conf files (facts §2.3)

@pytest.mark.parametrize("args, text", [
    ([], DEFAULT_CONF),
    (["--bridge", "br0", "--port", "tcp:80:8080", "--auto-start"],
     DEFAULT_CONF.replace("HOST_BRIDGE=\n", "HOST_BRIDGE=br0\n")
     .replace("HOST_PORT=\n", "HOST_PORT=tcp:80:8080\n").replace("AUTO_START=0", "AUTO_START=1")),
    (["--use-host-network"], "PRIVATE_NETWORK=0\nHOST_BRIDGE=\nHOST_PORT=\nAUTO_START=0\n"),
    (["--port", "tcp:1:1", "--port", "udp:53,tcp:8080:80"],
     DEFAULT_CONF.replace("HOST_PORT=\n", "HOST_PORT=udp:53,tcp:8080:80\n")),
], ids=["default", "bridge-port-autostart", "host-network", "last-port-wins"])
def test_conf_file_byte_for_byte(clean, args, text):
    ok(clean, "nixos-container", "create", "foo", *args)
    assert describe(clean, "/etc/nixos-containers/foo.conf") == \
        {"/etc/nixos-containers/foo.conf": ["file", 0o644, text]}


def test_flake_conf_line_and_tmp_link(clean):
    python(clean, r'''
import os
os.makedirs("/root/fl", exist_ok=True)
open("/root/fl/flake.nix", "w").write("""{
  outputs = { self, nixpkgs }: {
    nixosConfigurations.web = nixpkgs.lib.nixosSystem {
      modules = [ ({ ... }: { boot.isNspawnContainer = true; services.nginx.enable = true; }) ];
    };
  };
}
""")
''')
    ok(clean, "sh", "-c", "cd /root && nixos-container create fl --flake /root/fl#web")
    files = describe(clean, "/etc/nixos-containers/fl.conf", "/root/.tmp",
                     "/var/lib/nixos-containers/fl/etc/nixos/configuration.nix")
    assert files["/etc/nixos-containers/fl.conf"][2] == \
        DEFAULT_CONF + "FLAKE=/root/fl\n"
    assert files["/root/.tmp"][0] == "link"               # pitfall P-12: left behind
    assert "-nixos-system-fl-" in files["/root/.tmp"][2]
    assert files["/var/lib/nixos-containers/fl/etc/nixos/configuration.nix"] is None
    missing = nixos_container(clean, "create", "fl2", "--flake", "/root/fl#nosuch")
    assert missing.returncode != 0
    assert missing.stderr.endswith(err("failed to build container from flake '/root/fl'"))
    ok(clean, "rm", "-rf", "/root/fl", "/root/.tmp")


def test_create_lock_file_stays(clean):
    ok(clean, "nixos-container", "create", "foo")
    assert describe(clean, "/run/lock/nixos-container")["/run/lock/nixos-container"][0] == "file"


# ------------------------------------------------------------------ allocator (facts §4)

def test_allocator_order_reuse_and_prefix_quirk(clean):
    for name in ("a", "b", "c"):
        ok(clean, "nixos-container", "create", name)
    ok(clean, "nixos-container", "destroy", "b")
    reused = nixos_container(clean, "create", "d")
    assert reused.stderr == "host IP is 10.233.2.1, container IP is 10.233.2.2\n"
    # a prefixed value is not collected, so 10.233.4.x is handed out although it is in use
    ok(clean, "nixos-container", "create", "pfx", "--host-address", "10.233.4.1/24",
       "--local-address", "10.233.4.2/24")
    quirk = nixos_container(clean, "create", "e")
    assert quirk.stderr == "host IP is 10.233.4.1, container IP is 10.233.4.2\n"


def test_allocator_counts_only_exact_lines(clean):
    python(clean, r'''
open("/etc/nixos-containers/odd.conf", "w").write(
    "HOST_ADDRESS= 10.233.1.1\nLOCAL_ADDRESS=10.233.2.2\n# HOST_ADDRESS=10.233.3.1\n")
''')
    done = nixos_container(clean, "create", "foo")
    assert done.stderr == "host IP is 10.233.1.1, container IP is 10.233.1.2\n"
    second = nixos_container(clean, "create", "bar")
    assert second.stderr == "host IP is 10.233.3.1, container IP is 10.233.3.2\n"


# ------------------------------------------------------------------ options (facts §1.1, §1.2)

@pytest.mark.parametrize("argv, rc, stderr", [
    (["--ensure-unique-name", "create", "foo"], 0, "host IP is 10.233.1.1, container IP is 10.233.1.2\n"),
    (["create", "--config=services.nginx.enable = true;", "foo"], 0, None),
    (["create", "foo", "--ensure"], 0, None),
    (["create", "foo", "--conf", "x"], 1, "Option conf is ambiguous (config, config-file)\n"),
    (["create", "foo", "--config"], 1, "Option config requires an argument\n"),
    (["create", "foo", "--option", "k", "v", "--impure", "--refresh", "--log-format", "raw"], 0, None),
    (["create", "foo", "--config", "x", "--config-file", "/y"], 255,
     at_line("--config and --config-file are mutually incompatible. Please define one or the "
             "other, but not both", 142)),
    (["create", "foo", "--use-host-network", "--host-address", "1.1.1.1", "--local-address",
      "1.1.1.2"], 255,
     at_line("--use-host-network cannot be used with --host-address or --local-address!", 136)),
    (["0", "foo"], 255, err("no action specified")),
    (["create", "fo_o-1"], 0, None),
    (["create", "--help", "--nosuch"], 0, ""),
    (["--nosuch", "--help"], 0, "Unknown option: nosuch\n"),
], ids=["option-before-action", "equals-form", "abbreviation", "ambiguous", "missing-argument",
        "nix-flags", "config-conflict", "host-network-conflict", "action-0-is-false",
        "underscore-name", "help-first", "help-after-error"])
def test_option_parsing(clean, argv, rc, stderr):
    done = nixos_container(clean, *argv)
    assert done.returncode == rc, (done.stdout, done.stderr)
    if stderr is not None:
        assert done.stderr == stderr


# ------------------------------------------------------------------ configuration.nix (facts §2.4)

def template(name, extra):
    return ("{ config, lib, pkgs, ... }:\n\n{ boot.isNspawnContainer = true;\n"
            "  networking.hostName = lib.mkDefault \"%s\";\n  networking.useDHCP = false;\n"
            "  %s\n}\n" % (name, extra))


@pytest.mark.parametrize("args, extra", [
    ([], ""),
    (["--config", "services.nginx.enable = true;"], "services.nginx.enable = true;"),
    (["--config", ""], ""),
    (["--config", "0"], ""),
    (["--config-file", "/root/extra.nix"], "imports = [ /root/extra.nix ];"),
], ids=["none", "config", "config-empty", "config-zero", "config-file"])
def test_configuration_nix(clean, args, extra):
    python(clean, 'open("/root/extra.nix", "w").write("{ ... }: { }\\n")')
    ok(clean, "nixos-container", "create", "foo", *args)
    path = "/var/lib/nixos-containers/foo/etc/nixos/configuration.nix"
    assert describe(clean, path)[path][2] == template("foo", extra)
    ok(clean, "rm", "-f", "/root/extra.nix")


# ------------------------------------------------------------------ profiles (facts §2.5)

def profile(lab, name):
    base = "/nix/var/nix/profiles/per-container"
    listing = describe(lab, base, "%s/%s" % (base, name))
    links = {entry: describe(lab, "%s/%s/%s" % (base, name, entry))["%s/%s/%s" % (base, name, entry)][2]
             for entry in listing["%s/%s" % (base, name)][2]}
    return listing[base][1], listing["%s/%s" % (base, name)][1], links


def test_generations_new_on_change_none_on_identical(clean):
    ok(clean, "nixos-container", "create", "foo", "--config", "services.nginx.enable = true;")
    ok(clean, "nixos-container", "update", "foo", "--config", "services.nginx.enable   =  true ;")
    top_mode, mode, links = profile(clean, "foo")
    assert (top_mode, mode, sorted(links)) == (0o700, 0o755, ["system", "system-1-link"])
    ok(clean, "nixos-container", "update", "foo", "--config", "services.openssh.enable = true;")
    links = profile(clean, "foo")[2]
    assert sorted(links) == ["system", "system-1-link", "system-2-link"]
    assert links["system"] == "system-2-link"
    assert links["system-1-link"] != links["system-2-link"]
    assert re.match(r"^/nix/store/[0-9a-df-np-sv-z]{32}-nixos-system-foo-25\.11\.lab$",
                    links["system-2-link"])


def test_update_build_failure_keeps_generation(clean):
    ok(clean, "nixos-container", "create", "foo")
    done = nixos_container(clean, "update", "foo", "--config", "{")
    assert done.returncode != 0
    assert done.stderr.endswith(err("failed to build container configuration"))
    links = profile(clean, "foo")[2]
    assert sorted(links) == ["system", "system-1-link"]


def test_system_path_option(clean):
    ok(clean, "nixos-container", "create", "foo")
    system = describe(clean, "/nix/var/nix/profiles/per-container/foo/system-1-link")
    store_path = system["/nix/var/nix/profiles/per-container/foo/system-1-link"][2]
    ok(clean, "nixos-container", "create", "sp", "--system-path", store_path)
    links = profile(clean, "sp")[2]
    assert links["system-1-link"] == store_path
    assert describe(clean, "/var/lib/nixos-containers/sp")["/var/lib/nixos-containers/sp"] is None
    bad = nixos_container(clean, "create", "sp2", "--system-path", "/nix/store/nonexistent-x")
    assert bad.returncode != 0
    assert bad.stderr.endswith(err("failed to set initial container configuration"))
    assert describe(clean, "/etc/nixos-containers/sp2.conf")["/etc/nixos-containers/sp2.conf"] is None


# ------------------------------------------------------------------ destroy and declarative

def test_destroy_removes_profile_gcroots_root_and_conf(clean):
    ok(clean, "nixos-container", "create", "foo")
    ok(clean, "mkdir", "-p", "/nix/var/nix/gcroots/per-container/foo")
    ok(clean, "nixos-container", "destroy", "foo")
    paths = ["/etc/nixos-containers/foo.conf", "/var/lib/nixos-containers/foo",
             "/nix/var/nix/profiles/per-container/foo", "/nix/var/nix/gcroots/per-container/foo"]
    assert describe(clean, *paths) == {p: None for p in paths}


def test_declarative_is_listed_and_has_status(clean):
    python(clean, DECLARATIVE_CONF)
    ok(clean, "nixos-container", "create", "foo")
    assert nixos_container(clean, "list").stdout == "decl\nfoo\n"
    assert nixos_container(clean, "status", "decl").stdout == "down\n"
