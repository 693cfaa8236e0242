"""One lab's names and addresses (all derived from its id) and its state file."""

import json
import os
import time

from labkit.common import REPO, LabError, write_atomically


class Lab:
    """Names, addresses and paths of one lab, all derived from the lab id (docs/lab.md)."""

    def __init__(self, lab_id, state_dir):
        self.id = lab_id
        self.dir = state_dir
        self.prefix = f"nfl{lab_id}-"
        self.subnet = f"10.250.{lab_id}"
        self.bridge = f"nfl{lab_id}-br"
        self.bridge_address = f"{self.subnet}.1"
        self.outside_netns = f"nfl{lab_id}-out"
        self.outside_veth = f"nfl{lab_id}-o"
        self.outside_address = f"{self.subnet}.254"

    @classmethod
    def from_environment(cls):
        lab_id = os.environ.get("NIXFLEET_LAB_ID", "0")
        if len(lab_id) != 1 or not lab_id.isdigit():
            raise LabError(f"NIXFLEET_LAB_ID must be one digit, not {lab_id!r}")
        default_dir = os.path.join(REPO, ".lab" if lab_id == "0" else f".lab{lab_id}")
        state_dir = os.path.abspath(os.environ.get("NIXFLEET_LAB_DIR") or default_dir)
        # the lab has one kind since the emulated hosts went (issue 16); "systemd" still accepted
        if os.environ.get("NIXFLEET_LAB_KIND", "systemd") not in ("", "systemd"):
            raise LabError("NIXFLEET_LAB_KIND: the emulated lab is gone, the lab hosts boot systemd; "
                           "unset NIXFLEET_LAB_KIND")
        return cls(int(lab_id), state_dir)

    def netns(self, index):
        return f"nfl{self.id}-host{index}"

    def veth(self, index):
        return f"nfl{self.id}-h{index}"

    def address(self, index):
        return f"{self.subnet}.{10 + index}"

    def host_dir(self, index):
        return os.path.join(self.dir, "hosts", f"host{index}")

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    @property
    def state_file(self):
        return self.path("state.json")

    @property
    def inventory(self):
        return self.path("inventory.yml")

    @property
    def ansible_cfg(self):
        return self.path("ansible.cfg")

    @property
    def control_dir(self):
        return self.path("ansible", "cp")


def host_index(name):
    if not name.startswith("host") or not name[4:].isdigit():
        raise LabError(f"no such host {name!r} (hosts are host1..hostN)")
    return int(name[4:])


def load_state(lab):
    try:
        with open(lab.state_file, encoding="utf-8") as stream:
            return json.load(stream)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise LabError(f"unreadable {lab.state_file}: {error}; run labctl down") from error


def save_state(lab, state):
    write_atomically(lab.state_file, json.dumps(state, indent=1, sort_keys=True) + "\n", 0o600)


def host_record(state, name):
    if state is None:
        raise LabError("the lab is not up (labctl up)")
    host = state.get("hosts", {}).get(name)
    if host is None:
        raise LabError(f"no host {name!r} in lab {state['lab_id']} "
                       f"(hosts: {', '.join(sorted(state.get('hosts', {})))})")
    return host


def new_state(lab, count):
    return {"lab_id": lab.id, "dir": lab.dir, "count": count, "phase": "starting",
            "started": time.time(), "hosts": {}, "netns": {}, "links": [], "cgroups": [],
            "outside": None}
