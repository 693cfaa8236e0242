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
