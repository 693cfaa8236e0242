"""The lab itself keeps the contract of docs/lab.md (run as root; uses NIXFLEET_LAB_ID)."""

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.lab,
              pytest.mark.skipif(os.environ.get("NIXFLEET_LAB_KIND") != "emulated",
                                 reason="the emulated lab's contract; test_labctl_systemd.py covers the systemd lab")]

LAB_ID = os.environ.get("NIXFLEET_LAB_ID", "0")
PREFIX = f"nfl{LAB_ID}-"
SUBNET = f"10.250.{LAB_ID}"
CONTRACT_PATH = ("/run/current-system/sw/bin:/usr/local/sbin:/usr/local/bin:"
                 "/usr/sbin:/usr/bin:/sbin:/bin")
EMULATED = ("nixos-container", "systemctl", "machinectl", "nix-env", "nixos-rebuild", "journalctl")
REPO = Path(__file__).resolve().parents[3]
LABCTL = REPO / "tests" / "lab" / "labctl"


def ip_json(*args):
    return json.loads(subprocess.run(["ip", "-j", *args], capture_output=True, text=True,
                                     check=True).stdout or "[]")


def ipv4_addresses(interfaces):
    return {f"{a['local']}/{a['prefixlen']}" for i in interfaces for a in i.get("addr_info", [])
            if a["family"] == "inet"}


def lab_netns():
    return sorted(n["name"] for n in ip_json("netns", "list") if n["name"].startswith(PREFIX))


def lab_links():
    return sorted(link["ifname"] for link in ip_json("link", "show")
                  if link["ifname"].startswith(PREFIX))


def mount_table(text):
    """{mount point: fstype} from /proc/self/mountinfo text."""
    table = {}
    for line in text.splitlines():
        fields = line.split()
        table[fields[4]] = fields[fields.index("-") + 1]
    return table


def ssh(lab, host, command):
    return subprocess.run(
        ["ssh", "-i", lab.private_key, "-o", "StrictHostKeyChecking=no",
         "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "BatchMode=yes",
         "-o", "ConnectTimeout=5", f"root@{lab.address(host)}", command],
        capture_output=True, text=True, timeout=30, check=False)


def ping_outcomes(result):
    """{host: SUCCESS | UNREACHABLE! | FAILED!} from `ansible -m ping` output."""
    return dict(re.findall(r"^(host\d+) \| (\S+)", result.stdout, re.MULTILINE))


def namespace_inode(pid, kind):
    try:
        return int(os.readlink(f"/proc/{pid}/ns/{kind}").split("[")[1].rstrip("]"))
    except OSError:
        return None


def processes_in(kind, inodes):
    return sorted(int(pid) for pid in os.listdir("/proc")
                  if pid.isdigit() and namespace_inode(pid, kind) in inodes)


def init_pids(lab):
    state = json.loads(Path(lab.inventory).with_name("state.json").read_text())
    return {name: host["init"]["pid"] for name, host in state["hosts"].items()}


# ----------------------------------------------------------------------------- topology

def test_up_creates_namespaces_links_and_addresses(lab):
    assert lab_netns() == sorted([f"{PREFIX}out"] + [f"{PREFIX}{h}" for h in lab.hosts])
    bridge = f"{PREFIX}br"
    assert ipv4_addresses(ip_json("addr", "show", "dev", bridge)) == {f"{SUBNET}.1/24"}
    ports = {link["ifname"]: link for link in ip_json("link", "show", "master", bridge)}
    expected_ports = {f"{PREFIX}h{i}" for i in range(1, len(lab.hosts) + 1)} | {f"{PREFIX}o"}
    assert set(ports) == expected_ports
    assert all("UP" in link["flags"] for link in ports.values())
    for index, host in enumerate(lab.hosts, start=1):
        eth0 = ip_json("-n", f"{PREFIX}{host}", "addr", "show", "dev", "eth0")
        assert ipv4_addresses(eth0) == {f"{SUBNET}.{10 + index}/24"}
        assert lab.address(host) == f"{SUBNET}.{10 + index}"
        # no default route: all traffic stays on the lab's own addresses
        assert ip_json("-n", f"{PREFIX}{host}", "route", "show", "default") == []
    outside = ip_json("-n", f"{PREFIX}out", "addr", "show", "dev", "eth0")
    assert ipv4_addresses(outside) == {f"{SUBNET}.254/24"}


def test_host_mounts_are_private_to_the_host(lab):
    inside = mount_table(lab.exec("host1", "cat", "/proc/self/mountinfo", check=True).stdout)
    expected = {"/etc": "overlay", "/var/lib": "overlay", "/run": "tmpfs",
                "/sys/fs/cgroup": "cgroup2", "/etc/nixos-containers": None,
                "/var/lib/nixos-containers": None, "/nix": None, "/root": None, "/tmp": None}
    for point, fstype in expected.items():
        assert point in inside, f"{point} is not a mount point inside host1"
        if fstype:
            assert inside[point] == fstype
    root_namespace = mount_table(Path("/proc/self/mountinfo").read_text())
    assert root_namespace.get("/etc") != "overlay"
    assert root_namespace.get("/var/lib") != "overlay"
    assert not os.path.exists("/etc/nixos-containers")
    assert not os.path.exists("/var/lib/nixos-containers")
    assert not os.path.exists("/run/current-system")
    assert not any(p.startswith(str(Path(lab.inventory).parent)) for p in root_namespace)


def test_host_directories_and_emulator_links(lab):
    script = ("stat -c '%n %a' /etc/nixos-containers /var/lib/nixos-containers /nix/store "
              "/nix/var/nix/profiles/per-container /nix/var/nix/gcroots/per-container /run/netns "
              "/run/lock /run/sshd /run/nixos-lab/units /run/nixos-lab/journal "
              "/run/nixos-lab/faults /tmp /root; readlink /run/current-system/sw/bin/*; "
              "hostname; cat /etc/hostname; ls -A /root")
    lines = lab.exec("host2", "sh", "-c", script, check=True).stdout.splitlines()
    modes = dict(line.split() for line in lines[:13])
    assert modes["/etc/nixos-containers"] == "755"
    assert modes["/var/lib/nixos-containers"] == "700"
    assert modes["/nix/var/nix/profiles/per-container"] == "700"
    assert modes["/tmp"] == "1777"
    emulator = REPO / "tests" / "lab" / "emulator"
    links = len(EMULATED)
    assert lines[13:13 + links] == [str(emulator / name) for name in sorted(EMULATED)]
    assert lines[13 + links:15 + links] == ["host2", "host2"]
    assert lines[15 + links:] == [], "the root home must start empty"
    assert os.uname().nodename != "host2"


def test_os_release_is_nixos_like_only_inside(lab):
    text = lab.exec("host3", "cat", "/etc/os-release", check=True).stdout
    for line in ("NAME=NixOS", "ID=nixos", 'VERSION_ID="25.11"', 'PRETTY_NAME="NixOS 25.11 (lab)"'):
        assert line in text.splitlines()
    assert "ID=nixos" not in Path("/etc/os-release").read_text().splitlines()


def test_exec_passes_status_stdin_environment_and_cwd(lab):
    assert lab.exec("host1", "sh", "-c", "exit 7").returncode == 7
    echoed = lab.exec("host1", "cat", input="through stdin\n", check=True)
    assert echoed.stdout == "through stdin\n"
    shown = lab.exec("host1", "sh", "-c",
                     'echo "$PATH|$HOME|$(pwd)|$(readlink /proc/self/ns/pid)|$(cat /proc/1/comm)"',
                     check=True).stdout
    path, home, cwd, pid_namespace, pid1_name = shown.strip().split("|")
    assert (path, home, cwd) == (CONTRACT_PATH, "/root", "/root")
    # the host init's PID namespace (seen from here, where it is not PID 1)
    host_init = init_pids(lab)["host1"]
    assert pid_namespace == os.readlink(f"/proc/{host_init}/ns/pid"), \
        "exec must run inside the host's PID namespace"
    assert pid_namespace != os.readlink("/proc/self/ns/pid")
    assert pid1_name == "lab-hostinit", "PID 1 seen by exec must be the lab's hostinit"
    cgroup = lab.exec("host1", "cat", "/proc/self/cgroup", check=True).stdout
    assert "0::/\n" in cgroup, "exec must run inside the host's cgroup"


# ----------------------------------------------------------------------------- SSH and Ansible

def test_ssh_sessions_get_the_contract_path(lab):
    for host in lab.hosts:
        result = ssh(lab, host, "echo $PATH; hostname")
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines() == [CONTRACT_PATH, host]


def test_ansible_ping_and_module_path(lab):
    ping = lab.ansible("all", "ping")
    assert ping.returncode == 0, ping.stdout + ping.stderr
    assert ping_outcomes(ping) == {host: "SUCCESS" for host in lab.hosts}
    path = lab.ansible("host1", "command", 'sh -c "echo $PATH"')
    assert path.returncode == 0, path.stdout + path.stderr
    assert CONTRACT_PATH in path.stdout.splitlines()


def test_playbook_records_every_result(lab, tmp_path):
    play = """
- hosts: nixos_hosts
  gather_facts: false
  tasks:
    - name: Write a file
      ansible.builtin.copy:
        dest: /tmp/nixfleet-lab-test.txt
        content: "{{ inventory_hostname }}\\n"
    - name: Fail on host2 only
      ansible.builtin.command: /bin/false
      when: inventory_hostname == 'host2'
      ignore_errors: true
    - name: Read the outside
      ansible.builtin.command: "curl -s http://{{ lab_outside_address }}/"
      changed_when: false
"""
    for host in lab.hosts:
        lab.exec(host, "rm", "-f", "/tmp/nixfleet-lab-test.txt", check=True)
    run = lab.playbook(play, diff=True)
    assert run.rc == 0, run
    assert run.recap["host1"] == {"ok": 2, "changed": 1, "failed": 0, "unreachable": 0,
                                  "skipped": 1}
    assert run.recap["host2"]["failed"] == 0  # ignored failures are not counted as failed
    assert run.changed_tasks("host3") == ["Write a file"]
    written = run.result("host1", "Write a file")
    assert written["changed"] and written["action"] == "ansible.builtin.copy"
    assert written["diff"], "the diff of a changed copy must be recorded"
    failed = run.result("host2", "Fail on host2 only")
    assert failed["failed"] and failed["ignored"] and failed["result"]["rc"] == 1
    assert run.result("host1", "Fail on host2 only")["skipped"]
    for index, host in enumerate(lab.hosts, start=1):
        answer = run.result(host, "Read the outside")["result"]["stdout"]
        assert answer == f"client={SUBNET}.{10 + index}"
    again = lab.playbook(play, check=True, limit="host1")
    assert set(again.recap) == {"host1"}
    assert again.changed_tasks("host1") == []
    for host in lab.hosts:
        lab.exec(host, "rm", "-f", "/tmp/nixfleet-lab-test.txt", check=True)


def test_outside_answers_with_the_host_address(lab):
    for host in lab.hosts:
        answer = lab.exec(host, "curl", "-s", "--max-time", "5", f"http://{lab.outside_address}/",
                          check=True)
        assert answer.stdout == f"client={lab.address(host)}\n"


def test_hosts_do_not_see_each_other(lab):
    lab.exec("host1", "sh", "-c", "echo PRIVATE_NETWORK=1 > /etc/nixos-containers/probe.conf"
                                  " && mkdir /var/lib/nixos-containers/probe"
                                  " && ip netns add probe", check=True)
    try:
        listing = lab.exec("host1", "sh", "-c", "ls /etc/nixos-containers /var/lib/nixos-containers"
                                                " /run/netns", check=True).stdout
        assert listing.count("probe") == 3
        for other in lab.hosts[1:]:
            seen = lab.exec(other, "sh", "-c", "ls -A /etc/nixos-containers "
                                               "/var/lib/nixos-containers /run/netns", check=True)
            assert "probe" not in seen.stdout
        assert not os.path.exists("/etc/nixos-containers/probe.conf")
        assert "probe" not in [n["name"] for n in ip_json("netns", "list")]
    finally:
        lab.exec("host1", "sh", "-c", "ip netns del probe; rm -rf /etc/nixos-containers/probe.conf"
                                      " /var/lib/nixos-containers/probe", check=True)


# ----------------------------------------------------------------------------- labctl commands

def test_status_reports_every_host(lab):
    status = lab.labctl("status")
    for host in lab.hosts:
        assert re.search(rf"^  {host}: {re.escape(lab.address(host))} .* running, sshd ok$",
                         status.stdout, re.MULTILINE), status.stdout
    assert status.stdout.rstrip().endswith(f"lab {LAB_ID}: up")


def test_up_again_is_a_no_op_and_other_count_is_refused(lab):
    before = init_pids(lab)
    again = lab.labctl("up", "--hosts", str(len(lab.hosts)))
    assert again.stdout.strip() == lab.inventory
    assert "already up" in again.stderr
    assert init_pids(lab) == before
    other = lab.labctl("up", "--hosts", str(len(lab.hosts) + 1), check=False)
    assert other.returncode == 1
    assert f"already up with {len(lab.hosts)} hosts" in other.stderr
    assert init_pids(lab) == before
    assert lab.labctl("status").returncode == 0


def test_inventory_and_ansible_cfg(lab):
    assert lab.labctl("inventory").stdout.strip() == lab.inventory
    cfg = Path(lab.ansible_cfg).read_text()
    lab_dir = str(Path(lab.inventory).parent)
    for line in (f"inventory = {lab.inventory}", "host_key_checking = False", "forks = 10",
                 "pipelining = True", "retries = 0", "remote_tmp = /tmp/.ansible/tmp",
                 f"control_path_dir = {lab_dir}/ansible/cp"):
        assert line in cfg.splitlines()
    assert (Path(lab.ansible_cfg).parent / "ssh" / "client_key").exists()
    collection = REPO / ".build" / "ansible_collections" / "nixfleet" / "containers"
    assert collection.resolve() == REPO


def test_file_faults_are_written_and_cleared(lab):
    lab.fault("host1", "start-fail", "web")
    lab.fault("host1", "health-fail", "db")
    lab.fault("host1", "slow-start", "web", "2.5")
    script = "cd /run/nixos-lab/faults && for f in */*; do echo \"$f=$(cat $f)\"; done"
    assert lab.exec("host1", "sh", "-c", script, check=True).stdout.splitlines() == [
        "health-fail/db=", "slow-start/web=2.5", "start-fail/web="]
    assert lab.exec("host2", "find", "/run/nixos-lab/faults", "-type", "f").stdout == ""
    refused = lab.labctl("fault", "host1", "slow-start", "web", "soon", check=False)
    assert refused.returncode == 1 and "SECONDS" in refused.stderr
    assert lab.labctl("fault", "host1", "start-fail", "../x", check=False).returncode == 1
    lab.fault("host1", "clear")
    assert lab.exec("host1", "find", "/run/nixos-lab/faults", "-type", "f").stdout == ""


def test_unreachable_fault_cuts_one_host_and_clear_restores_it(lab):
    assert ping_outcomes(lab.ansible("all", "ping")) == {h: "SUCCESS" for h in lab.hosts}
    lab.fault("host2", "unreachable")
    try:
        started = time.monotonic()
        cut = lab.ansible("all", "ping")
        elapsed = time.monotonic() - started
        expected = {h: "SUCCESS" for h in lab.hosts}
        expected["host2"] = "UNREACHABLE!"
        assert ping_outcomes(cut) == expected, cut.stdout
        assert cut.returncode != 0
        assert elapsed < 30, "an unreachable host must fail fast (ansible.cfg timeout)"
        assert "fault: unreachable" in lab.labctl("status").stdout
    finally:
        lab.fault("host2", "clear")
    restored = lab.ansible("all", "ping")
    assert ping_outcomes(restored) == {h: "SUCCESS" for h in lab.hosts}


def test_refuses_to_run_without_root():
    result = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                             str(LABCTL), "status"], capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert "must run as root" in result.stderr


# ----------------------------------------------------------------------------- teardown (last)

RUNNER_STANDIN = ('trap "echo terminated > $0/runner-marker; exit 0" TERM; '
                  "while :; do sleep 0.1; done")


def test_down_stops_runners_gracefully_and_leaves_nothing(lab):
    """Runs last in this module: down, check that nothing is left, then up again."""
    lab_dir = Path(lab.inventory).parent
    count = len(lab.hosts)
    witness = Path(tempfile.mkdtemp(prefix="nixfleet-lab-", dir="/var/tmp"))  # not per-host
    try:
        # a daemonised stand-in for an emulator runner: orphaned, so the host's init adopts it
        lab.exec("host1", "sh", "-c", 'setsid -f sh -c "$1" "$2" </dev/null >/dev/null 2>&1',
                 "daemonise", RUNNER_STANDIN, str(witness), check=True)
        inits = init_pids(lab)
        net_inodes = {namespace_inode(pid, "net") for pid in inits.values()}
        pid_inodes = {namespace_inode(pid, "pid") for pid in inits.values()}
        mnt_inodes = {namespace_inode(pid, "mnt") for pid in inits.values()}
        assert None not in net_inodes | pid_inodes | mnt_inodes

        started = time.monotonic()
        down = lab.labctl("down")
        print(f"labctl down: {time.monotonic() - started:.2f}s")

        assert (witness / "runner-marker").read_text() == "terminated\n"
        assert "could not remove" not in down.stderr
        assert lab_netns() == [] and lab_links() == []
        assert processes_in("net", net_inodes) == []
        assert processes_in("pid", pid_inodes) == []
        assert processes_in("mnt", mnt_inodes) == []
        assert not any(line.split()[4].startswith(str(lab_dir))
                       for line in Path("/proc/self/mountinfo").read_text().splitlines())
        assert not lab_dir.exists()
        cgroups = [p for root in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup")
                   if os.path.isdir(root) for p in os.listdir(root) if p.startswith(PREFIX)]
        assert cgroups == []
        assert lab.labctl("status", check=False).returncode == 3
    finally:
        shutil.rmtree(witness, ignore_errors=True)
        # later tests in the session still expect the lab
        started = time.monotonic()
        lab.labctl("up", "--hosts", str(count))
        print(f"labctl up: {time.monotonic() - started:.2f}s")
