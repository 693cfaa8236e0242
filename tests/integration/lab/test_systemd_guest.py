"""The opt-in systemd guest (`lab.systemdGuest = true;`, docs/lab.md): the hosts' Debian root
with systemd as the container's init and the HTTP stand-in as a real socket unit. What only a
real init shows: Type=notify readiness through to the guest's own boot, `systemctl -M NAME`
from the lab host, a clean shutdown, tmpfiles applied at boot."""

import time

import pytest

from emulator_helpers import HOST, clean_host, nixos_container, ok, unit_properties, wait_unit

pytestmark = pytest.mark.lab

LOCAL_ADDRESS = "10.233.4.2"
CONFIG = "lab.systemdGuest = true; services.nginx.enable = true;"


@pytest.fixture
def clean(lab):
    clean_host(lab)
    yield lab
    clean_host(lab)


def guest(lab, name, *argv):
    """systemctl ARGV against the guest's systemd, from the lab host (machined + the guest's bus)."""
    return lab.exec(HOST, "systemctl", "-M", name, *argv, timeout=60)


def create(lab, name):
    ok(lab, "nixos-container", "create", name, "--config", CONFIG,
       "--host-address", "10.233.4.1", "--local-address", LOCAL_ADDRESS)


def test_readiness_is_the_guests_boot_and_systemctl_reaches_into_it(clean):
    create(clean, "sdg")
    clean.fault(HOST, "slow-start", "sdg", "3")
    started = time.monotonic()
    ok(clean, "nixos-container", "start", "sdg")
    elapsed = time.monotonic() - started
    # READY=1 came from the guest's systemd at the end of its boot: after the unit that the
    # slow-start fault holds up (before multi-user.target), not when nspawn started
    assert elapsed >= 3.0, elapsed
    assert unit_properties(clean, "sdg", "ActiveState", "SubState") == \
        {"ActiveState": "active", "SubState": "running"}
    assert guest(clean, "sdg", "is-system-running").stdout.strip() in ("running", "degraded")
    assert guest(clean, "sdg", "is-active", "multi-user.target", "lab-start-faults.service",
                 "lab-http.socket").stdout.split() == ["active", "active", "active"]
    assert guest(clean, "sdg", "show", "-p", "ActiveEnterTimestampMonotonic", "--value",
                 "lab-start-faults.service").returncode == 0
    pid1 = ok(clean, "nixos-container", "run", "sdg", "--", "cat", "/proc/1/comm").stdout
    assert pid1 == "systemd\n"
    # the guest's boot ran systemd-tmpfiles: Debian's var.conf (the start script makes none of
    # these) gave /var/run -> ../run and /var/log/wtmp 0664 root:utmp
    assert guest(clean, "sdg", "is-active", "systemd-tmpfiles-setup.service").stdout.strip() == "active"
    made = ok(clean, "nixos-container", "run", "sdg", "--", "sh", "-c",
              "readlink /var/run; stat -c '%a %U %G' /var/log/wtmp").stdout
    assert made == "../run\n664 root utmp\n", made
    machines = ok(clean, "machinectl", "show", "sdg", "-p", "Class", "-p", "Service").stdout
    assert "Class=container" in machines and "Service=systemd-nspawn" in machines
    # the HTTP stand-in is the guest's socket unit (Accept=yes: one service per connection)
    answer = ok(clean, "curl", "-s", "-m", "5", "http://%s/" % LOCAL_ADDRESS).stdout
    assert answer == "sdg generation 1\n"
    assert guest(clean, "sdg", "show", "-p", "NAccepted", "--value", "lab-http.socket").stdout.strip() == "1"


def test_clean_shutdown_of_the_guests_systemd(clean):
    create(clean, "sdg")
    ok(clean, "nixos-container", "start", "sdg")
    ok(clean, "nixos-container", "stop", "sdg")
    assert wait_unit(clean, "sdg", "inactive")["ActiveState"] == "inactive"
    # (an inactive unit may be unloaded at once, so its result is read from the journal)
    journal = ok(clean, "journalctl", "-u", "container@sdg.service", "-o", "cat", "--no-pager").stdout
    # the guest's console is the unit's output: SIGRTMIN+3 (NixOS's --kill-signal) is systemd's
    # halt, so the guest's systemd went through its shutdown, nspawn ended and systemd saw the
    # unit end successfully, without killing anything itself
    assert "Reached target final.target" in journal and "Halting system." in journal, journal[-3000:]
    assert "Container sdg has been shut down." in journal, journal[-3000:]
    assert "container@sdg.service: Deactivated successfully." in journal, journal[-3000:]
    assert "Killing process" not in journal and "with signal SIGKILL" not in journal, journal[-3000:]
    assert nixos_container(clean, "status", "sdg").stdout == "down\n"
