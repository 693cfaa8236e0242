"""Containers for the connection and inventory plugin tests, made once per module.

host1: ``pyc`` (running, with the machine's /usr bound read-only, so Python runs inside:
the lab's guests are busybox-only), ``bare`` (running, busybox only), ``off`` (stopped).
host2: ``bare`` (running). Everything is destroyed at the end.
"""

import json

import pytest

# Test-only: the machine's /usr (Debian's Python 3.11), its loader (/lib64) and /lib
# (the loader's link target) bound read-only into the busybox guest.
PYTHON_BINDS = [{"mount_point": "/usr"}, {"mount_point": "/lib64", "host_path": "/usr/lib64"},
                {"mount_point": "/lib", "host_path": "/usr/lib"}]
CONTAINERS = {
    "host1": [dict(name="pyc", state="started", bind_mounts=PYTHON_BINDS),
              dict(name="bare", state="started"), dict(name="off", state="stopped")],
    "host2": [dict(name="bare", state="started")],
}


def containers_play(state=None):
    plays = []
    for host, specs in CONTAINERS.items():
        tasks = [{"name": "container %s" % spec["name"],
                  "nixfleet.containers.nixos_container": dict(spec, state=state) if state else spec}
                 for spec in specs]
        plays.append({"hosts": host, "gather_facts": False, "tasks": tasks})
    return json.dumps(plays)


@pytest.fixture(scope="module")
def containers(lab):
    run = lab.playbook(containers_play())
    assert run.rc == 0, run
    yield lab
    run = lab.playbook(containers_play(state="absent"))
    assert run.rc == 0, run
