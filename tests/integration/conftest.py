"""Fixtures for tests that drive the lab of NixOS-like hosts (docs/lab.md).

`lab` (session): brings the lab up once (3 hosts) unless it is already up, and takes it down
at the end if it brought it up (NIXFLEET_LAB_KEEP=1 keeps it). `clean_hosts` (function):
after the test, destroys every container on every host and clears the faults.
"""

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
LABCTL = REPO / "tests" / "lab" / "labctl"
CALLBACK_DIR = Path(__file__).resolve().parent / "plugins" / "callback"
LAB_HOSTS = 3
EXIT_LAB_DOWN = 3


def venv_bin(tool):
    """The venv's copy of TOOL (next to the running interpreter, else <repo>/.venv)."""
    for directory in (Path(sys.executable).parent, REPO / ".venv" / "bin"):
        if (directory / tool).exists():
            return str(directory / tool)
    return tool


class CommandError(subprocess.CalledProcessError):
    """CalledProcessError that shows the command's output in the test report."""

    def __str__(self):
        return (f"{super().__str__()}\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}")


def labctl(*args, check=True, timeout=120, input=None):  # noqa: A002 (subprocess's name)
    result = subprocess.run([str(LABCTL), *args], input=input, capture_output=True, text=True,
                            timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise CommandError(result.returncode, result.args, result.stdout, result.stderr)
    return result


@dataclass
class PlaybookRun:
    """The outcome of one ansible-playbook run, from our callback's records."""

    rc: int
    stdout: str
    stderr: str
    results: list = field(default_factory=list)
    recap: dict = field(default_factory=dict)

    def result(self, host, task_name):
        """The (last) result of the task called TASK_NAME on HOST; KeyError when there is none."""
        matches = [r for r in self.results
                   if r["host"] == host and task_name in (r["task"], r["name"])]
        if not matches:
            seen = sorted({r["task"] for r in self.results if r["host"] == host})
            raise KeyError(f"no result of task {task_name!r} on {host}; tasks seen: {seen}")
        return matches[-1]

    def changed_tasks(self, host):
        return [r["task"] for r in self.results if r["host"] == host and r["changed"]]

    def __str__(self):
        return (f"ansible-playbook exit {self.rc}\n--- stdout\n{self.stdout}\n"
                f"--- stderr\n{self.stderr}")


def read_results(path):
    results, recap = [], {}
    with open(path, encoding="utf-8") as stream:
        for line in stream:
            record = json.loads(line)
            if record["kind"] == "recap":
                recap = record["recap"]
            else:
                results.append(record)
    return results, recap


class Lab:
    """The running lab as tests see it."""

    def __init__(self, inventory):
        self.inventory = str(inventory)
        self.ansible_cfg = str(Path(inventory).with_name("ansible.cfg"))
        with open(self.inventory, encoding="utf-8") as stream:
            group = yaml.safe_load(stream)["all"]["children"]["nixos_hosts"]
        self._addresses = {name: host["ansible_host"] for name, host in group["hosts"].items()}
        self.outside_address = group["vars"]["lab_outside_address"]
        self.private_key = group["vars"]["ansible_ssh_private_key_file"]
        self.hosts = sorted(self._addresses, key=lambda name: int(name[4:]))

    def address(self, host):
        return self._addresses[host]

    @staticmethod
    def labctl(*args, check=True, timeout=120):
        """Run tests/lab/labctl ARGS for this lab (same environment)."""
        return labctl(*args, check=check, timeout=timeout)

    def exec(self, host, *argv, input=None, check=False, timeout=60):  # noqa: A002
        """Run ARGV inside HOST (labctl exec); text-mode CompletedProcess."""
        return labctl("exec", host, "--", *argv, input=input, check=check, timeout=timeout)

    def fault(self, host, *args):
        return labctl("fault", host, *args)

    def clear_faults(self):
        for host in self.hosts:
            self.fault(host, "clear")

    def ansible_environment(self, **extra):
        environment = dict(os.environ, ANSIBLE_CONFIG=self.ansible_cfg, ANSIBLE_FORCE_COLOR="0",
                           ANSIBLE_NOCOLOR="1", ANSIBLE_DEPRECATION_WARNINGS="0")
        environment.update(extra)
        return environment

    def ansible(self, pattern, module, args=None, timeout=120):
        """An ad-hoc `ansible PATTERN -m MODULE -a ARGS` with the lab's configuration."""
        argv = [venv_bin("ansible"), pattern, "-m", module]
        if args is not None:
            argv += ["-a", args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False,
                              env=self.ansible_environment(), cwd=REPO)

    def playbook(self, play, *, check=False, diff=False, extra_vars=None, limit=None,
                 timeout=600):
        """Run PLAY (a path, or the YAML text of a playbook) against the lab."""
        with tempfile.TemporaryDirectory(prefix="nixfleet-play-") as scratch:
            if "\n" not in str(play) and Path(play).is_file():
                play_path = str(play)
            else:
                play_path = os.path.join(scratch, "play.yml")
                Path(play_path).write_text(play, encoding="utf-8")
            results_path = os.path.join(scratch, "results.jsonl")
            argv = [venv_bin("ansible-playbook"), play_path]
            if check:
                argv.append("--check")
            if diff:
                argv.append("--diff")
            if extra_vars:
                argv += ["--extra-vars", json.dumps(extra_vars)]
            if limit:
                argv += ["--limit", limit if isinstance(limit, str) else ",".join(limit)]
            environment = self.ansible_environment(
                ANSIBLE_CALLBACK_PLUGINS=str(CALLBACK_DIR),
                ANSIBLE_CALLBACKS_ENABLED="nixfleet_results",
                NIXFLEET_RESULTS_FILE=results_path)
            completed = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                                       check=False, env=environment, cwd=REPO)
            results, recap = ([], {})
            if os.path.exists(results_path):
                results, recap = read_results(results_path)
        return PlaybookRun(completed.returncode, completed.stdout, completed.stderr,
                           results, recap)


@pytest.fixture(scope="session")
def lab():
    status = labctl("status", check=False)
    brought_up = False
    if status.returncode == EXIT_LAB_DOWN:
        labctl("up", "--hosts", str(LAB_HOSTS))
        brought_up = True
    elif status.returncode != 0:
        raise RuntimeError(f"the lab is neither up nor down; run labctl down first:\n"
                           f"{status.stdout}{status.stderr}")
    inventory = labctl("inventory").stdout.strip()
    yield Lab(inventory)
    if brought_up and os.environ.get("NIXFLEET_LAB_KEEP") != "1":
        labctl("down")


# Stops running containers, then destroys every container (destroy also stops a running one,
# but an explicit stop exercises the normal path first). The names come from `list`.
DESTROY_ALL_CONTAINERS = """
command -v nixos-container >/dev/null 2>&1 || exit 0
for name in $(nixos-container list); do
  if [ "$(nixos-container status "$name" 2>/dev/null)" = up ]; then
    nixos-container stop "$name" || echo "stop $name failed" >&2
  else
    # A unit retrying a failed start (Restart=on-failure) is not `up`; destroy would leave it.
    systemctl stop "container@$name.service"
  fi
  nixos-container destroy "$name" || echo "destroy $name failed" >&2
done
# A failed unit outlives its container and leaves the host's systemd `degraded`.
systemctl reset-failed 'container@*'
# The systems nixos_containers built once for several containers (build=per_system).
rm -rf /nix/var/nix/profiles/nixfleet-systems /var/lib/nixfleet/systems
# The lab's eth1 is up; a container that had it (interfaces) gives it back down.
ip link set eth1 up
nixos-container list
"""


@pytest.fixture
def clean_hosts(lab):
    yield lab
    lab.clear_faults()
    leftovers = {}
    for host in lab.hosts:
        result = lab.exec(host, "sh", "-c", DESTROY_ALL_CONTAINERS, timeout=300)
        if result.returncode != 0 or result.stdout.strip():
            leftovers[host] = (result.returncode, result.stdout.strip(), result.stderr.strip())
    if leftovers:
        raise RuntimeError(f"containers left after clean-up: {leftovers}")


@pytest.fixture
def fresh(lab, clean_hosts):
    """The lab, with every container destroyed and every fault cleared after the test."""
    return lab
