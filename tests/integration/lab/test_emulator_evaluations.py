"""The emulator's evaluation log and evaluation cost (nixlab/evaluation.py; docs/lab.md)."""

import json

import pytest

from emulator_helpers import HOST, clean_host, nixos_container, ok

LOG = "/nix/var/nix/lab-evaluations.log"
COST_FILE = "/nix/var/nix/lab-evaluation-cost"


@pytest.fixture
def clean(lab):
    """A clean host with an empty evaluation log and no cost file, before and after."""
    clean_host(lab)
    ok(lab, "rm", "-f", LOG, COST_FILE)
    yield lab
    ok(lab, "rm", "-f", LOG, COST_FILE)
    clean_host(lab)


def evaluations(lab):
    done = lab.exec(HOST, "cat", LOG)
    return [json.loads(line) for line in done.stdout.splitlines()] if done.returncode == 0 else []


def summary(entries):
    return [(e["command"], e["kind"], e["container"], e["ok"]) for e in entries]


def test_every_evaluation_is_logged_with_its_kind_and_source(clean):
    ok(clean, "nixos-container", "create", "foo", "--config", "services.nginx.enable = true;")
    ok(clean, "nixos-container", "create", "bar", "--config", "services.nginx.enable = true;")
    first = evaluations(clean)
    assert summary(first) == [("nixos-container", "build", "foo", True), ("nixos-container", "build", "bar", True)]
    assert first[0]["source"] == "/var/lib/nixos-containers/foo/etc/nixos/configuration.nix"
    assert first[0]["charged"] == 0
    # update: the 25.11 check, then the build; status, list and start evaluate nothing
    ok(clean, "nixos-container", "update", "foo", "--config", "services.openssh.enable = true;")
    ok(clean, "nixos-container", "status", "foo")
    ok(clean, "nixos-container", "list")
    assert summary(evaluations(clean)[2:]) == [("nixos-container", "check", "foo", True),
                                               ("nixos-container", "build", "foo", True)]
    # a failed evaluation is logged as failed; --system-path evaluates nothing
    assert nixos_container(clean, "update", "bar", "--config", "{").returncode != 0
    system = ok(clean, "readlink", "-f", "/nix/var/nix/profiles/per-container/foo/system").stdout.strip()
    ok(clean, "nixos-container", "create", "baz", "--system-path", system)
    assert summary(evaluations(clean)[4:]) == [("nixos-container", "build", "bar", False)]


def test_the_cost_file_charges_each_evaluation(clean):
    ok(clean, "sh", "-c", "echo 0.4 > %s" % COST_FILE)
    ok(clean, "nixos-container", "create", "foo", "--config", "services.nginx.enable = true;")
    ok(clean, "nixos-container", "update", "foo", "--config", "services.openssh.enable = true;")
    entries = evaluations(clean)
    assert [(e["kind"], e["charged"]) for e in entries] == [("build", 0.4), ("check", 0.4), ("build", 0.4)]
    # the charge is part of each evaluation's own time
    assert all(e["seconds"] >= 0.4 for e in entries)
    ok(clean, "sh", "-c", "echo nonsense > %s" % COST_FILE)
    ok(clean, "nixos-container", "create", "bar")
    assert evaluations(clean)[-1]["charged"] == 0
