"""The lab's nix-env: the profile operations the collection runs, with Nix's semantics."""

import pytest

HOST = "host1"
PROFILE = "/nix/var/nix/profiles/per-container/web/system"


@pytest.fixture
def web(lab, clean_hosts):
    """A container with two generations (two different configurations)."""
    for config in ("services.nginx.enable = true;", "services.openssh.enable = true;"):
        verb = "create" if config.startswith("services.nginx") else "update"
        done = lab.exec(HOST, "nixos-container", verb, "web", "--config", config)
        assert done.returncode == 0, done.stderr
    return lab


def target(lab, link):
    return lab.exec(HOST, "readlink", link, check=True).stdout.strip()


def paths(lab):
    return [target(lab, "%s-%d-link" % (PROFILE, n)) for n in (1, 2)]


def test_rollback_and_switch_generation(web):
    assert target(web, PROFILE) == "system-2-link"
    done = web.exec(HOST, "nix-env", "-p", PROFILE, "--rollback")
    assert (done.returncode, done.stderr) == (0, "switching profile from version 2 to 1\n")
    assert target(web, PROFILE) == "system-1-link"
    done = web.exec(HOST, "nix-env", "-p", PROFILE, "--rollback")
    assert done.returncode == 1
    assert done.stderr == "error: no generation older than the current (1) exists\n"
    done = web.exec(HOST, "nix-env", "-p", PROFILE, "--switch-generation", "2")
    assert done.returncode == 0 and target(web, PROFILE) == "system-2-link"
    listing = web.exec(HOST, "nix-env", "-p", PROFILE, "--list-generations", check=True).stdout
    assert [line.split()[0] for line in listing.splitlines()] == ["1", "2"]
    assert listing.splitlines()[1].endswith("(current)")


def test_set_reuses_only_the_newest_generation(web):
    first, second = paths(web)
    web.exec(HOST, "nix-env", "-p", PROFILE, "--rollback", check=True)
    # The newest generation already holds `second`: Nix switches to it, no generation 3.
    web.exec(HOST, "nix-env", "-p", PROFILE, "--set", second, check=True)
    assert target(web, PROFILE) == "system-2-link"
    assert web.exec(HOST, "test", "-e", PROFILE + "-3-link").returncode == 1
    # `first` is not the newest generation's path: a new generation 3 points at it.
    web.exec(HOST, "nix-env", "-p", PROFILE, "--set", first, check=True)
    assert target(web, PROFILE) == "system-3-link"
    assert target(web, PROFILE + "-3-link") == first


def test_set_refuses_paths_outside_the_store(web):
    done = web.exec(HOST, "nix-env", "-p", PROFILE, "--set", "/tmp")
    assert (done.returncode, done.stderr) == (1, "error: path '/tmp' is not in the Nix store\n")
    done = web.exec(HOST, "nix-env", "-p", PROFILE, "--set", "/nix/store/missing-system")
    assert (done.returncode, done.stderr) == (1, "error: path '/nix/store/missing-system' is not valid\n")


SHARED = ('{ config, lib, pkgs, ... }:\n{ boot.isNspawnContainer = true;\n  networking.hostName = lib.mkDefault "";\n'
          '  services.openssh.enable = true;\n}\n')


def test_build_as_nixos_container_does_then_copy_the_closure_to_another_host(lab, clean_hosts):
    """nix-env -I nixos-config=F -f <nixpkgs/nixos> --set -A system; nix-store -qR/--export/--import."""
    profile = "/nix/var/nix/profiles/lab-test-build"
    lab.exec(HOST, "sh", "-c", "cat > /tmp/lab-test.nix", input=SHARED, check=True)
    try:
        done = lab.exec(HOST, "nix-env", "-p", profile, "-I", "nixos-config=/tmp/lab-test.nix", "-f",
                        "<nixpkgs/nixos>", "--set", "-A", "system")
        assert done.returncode == 0, done.stderr
        system = lab.exec(HOST, "readlink", "-f", profile, check=True).stdout.strip()
        assert system.endswith("-nixos-system-unnamed-25.11.lab")
        closure = lab.exec(HOST, "nix-store", "-qR", profile, check=True).stdout.split()
        assert closure[0] == system and len(closure) == 3    # the system, busybox, sd-notify
        exported = lab.exec(HOST, "sh", "-c", "nix-store --export $(nix-store -qR %s) | base64 -w0" % system,
                            check=True).stdout
        lab.exec("host2", "sh", "-c", "chmod -R u+w %s 2>/dev/null; rm -rf %s" % (system, system), check=True)
        done = lab.exec("host2", "sh", "-c", "base64 -d | nix-store --import", input=exported)
        assert done.returncode == 0 and done.stdout.split() == sorted(closure), done.stderr
        # Whole, read-only, and its programs still run.
        assert lab.exec("host2", "test", "-x", system + "/activate").returncode == 0
        assert lab.exec("host2", "stat", "-c", "%a", system + "/activate", check=True).stdout.strip() == "555"
        # A configuration that does not evaluate: Nix's message, no profile.
        lab.exec(HOST, "sh", "-c", "echo '{ services.nginx.enable = throw \"broken\"; }' > /tmp/lab-test.nix", check=True)
        done = lab.exec(HOST, "nix-env", "-p", profile + "-bad", "-I", "nixos-config=/tmp/lab-test.nix", "-f",
                        "<nixpkgs/nixos>", "--set", "-A", "system")
        assert done.returncode == 1 and "error: broken" in done.stderr
        assert lab.exec(HOST, "test", "-e", profile + "-bad").returncode != 0
    finally:
        lab.exec(HOST, "sh", "-c", "rm -f /tmp/lab-test.nix %s %s-*-link" % (profile, profile))
