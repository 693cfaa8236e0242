"""Helpers for the plugin tests: hand-written inventories, playbook runs with other inventories."""

import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

CONNECTION = "nixfleet.containers.nixos_container"
CALLBACK_DIR = Path(__file__).resolve().parent / "callback"


def local_address(lab, host, name):
    conf = lab.exec(host, "cat", "/etc/nixos-containers/%s.conf" % name, check=True).stdout
    return dict(line.split("=", 1) for line in conf.splitlines() if "=" in line)["LOCAL_ADDRESS"]


def direct_inventory(lab, path, names, **extra):
    """An inventory of containers of host1 reached with the connection plugin, written by hand."""
    hosts = {}
    for name in names:
        hosts[name] = dict(ansible_connection=CONNECTION, ansible_host=lab.address("host1"),
                           ansible_user="root", ansible_ssh_private_key_file=lab.private_key,
                           ansible_ssh_common_args="-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
                           nixos_container_name=name, ansible_python_interpreter="/usr/bin/python3", **extra)
    Path(path).write_text(json.dumps({"all": {"hosts": hosts}}), encoding="utf-8")
    return str(path)


def run_play(lab, play, inventories, timeout=300):
    """ansible-playbook PLAY with these inventories and the lab's ansible.cfg.

    Returns (rc, {task name: {host: result}}, stdout + stderr), from the test-only callback.
    """
    with tempfile.TemporaryDirectory(prefix="nixfleet-plugins-") as scratch:
        play_path = os.path.join(scratch, "play.yml")
        Path(play_path).write_text(textwrap.dedent(play), encoding="utf-8")
        results_path = os.path.join(scratch, "results.jsonl")
        argv = [lab_bin("ansible-playbook")]
        for inventory in inventories:
            argv += ["-i", inventory]
        argv.append(play_path)
        env = lab.ansible_environment(ANSIBLE_CALLBACK_PLUGINS=str(CALLBACK_DIR),
                                      ANSIBLE_CALLBACKS_ENABLED="nixfleet_results",
                                      NIXFLEET_RESULTS_FILE=results_path)
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, check=False)
        results = {}
        if os.path.exists(results_path):
            with open(results_path, encoding="utf-8") as stream:
                for line in stream:
                    record = json.loads(line)
                    if record["kind"] == "result":
                        results.setdefault(record["task"], {})[record["host"]] = record["result"]
    return proc.returncode, results, proc.stdout + proc.stderr


def lab_bin(tool):
    candidate = Path(sys.executable).parent / tool
    return str(candidate) if candidate.exists() else tool
