"""The lab's hosts as labctl sees them: a network namespace on the lab bridge per host (the host
itself boots in it, labkit.sdhosts), and the client files (inventory, ansible.cfg, keys) that
reach them."""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

from labkit.common import (CONTRACT_PATH, HOST_PYTHON, IP, NSENTER, REPO, SSH, SSH_KEYGEN,
                           LabError, run, write_atomically)
from labkit.kernel import netns_inode, send_signal, wait_for_exit
from labkit import sdhosts
from labkit.state import host_index, host_record, load_state, save_state

# How long labctl up waits for every host's sshd: three hosts boot in 2-4 s on a quiet machine,
# but 15 s was not enough at load 9 (systemd, journald and sshd of each host start together).
READY_TIMEOUT = 60.0


def make_keys(lab, count):
    ssh_dir = lab.path("ssh")
    os.makedirs(ssh_dir, mode=0o700, exist_ok=True)
    keys = {"client_key": "nixfleet-lab-client"}
    keys.update({f"host{i}_ed25519": f"nixfleet-lab-host{i}" for i in range(1, count + 1)})
    jobs = [subprocess.Popen([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", comment,
                              "-f", os.path.join(ssh_dir, name)],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
            for name, comment in keys.items()]
    if any(job.wait(timeout=30) != 0 for job in jobs):
        raise LabError("ssh-keygen failed")
    shutil.copyfile(os.path.join(ssh_dir, "client_key.pub"), os.path.join(ssh_dir, "authorized_keys"))


def make_bridge(lab, state):
    run([IP, "link", "add", lab.bridge, "type", "bridge"])
    state["links"].append(lab.bridge)
    run([IP, "addr", "add", f"{lab.bridge_address}/24", "dev", lab.bridge])
    run([IP, "link", "set", lab.bridge, "up"])


def running_init(state, name):
    """The PID whose namespaces are the host's: the host's systemd."""
    host_record(state, name)
    return sdhosts.current_leader(state, name)


def host_running(host):
    return sdhosts.find_leader(host) is not None


# The outside namespace's bridge that holds every host's eth1 peer: one L2 segment, as the VM
# tests' `virtualisation.vlans = [ 1 ]` puts each machine's eth1 on VLAN 1.
ETH1_SEGMENT = "vlan1"


def make_eth1_segment(lab):
    """The bridge of the hosts' eth1 peers in the outside namespace (it goes with the namespace)."""
    run([IP, "-n", lab.outside_netns, "link", "add", ETH1_SEGMENT, "type", "bridge"])
    run([IP, "-n", lab.outside_netns, "link", "set", ETH1_SEGMENT, "up"])


def add_second_nic(lab, netns, index):
    """eth1: a veth whose peer (hostN) sits in the outside namespace's bridge ETH1_SEGMENT, for
    macvlans and interfaces moved into containers; no address (tests give it what they need)."""
    run([IP, "-n", lab.outside_netns, "link", "add", f"host{index}", "type", "veth", "peer",
         "name", "eth1", "netns", netns])
    run([IP, "-n", lab.outside_netns, "link", "set", f"host{index}", "master", ETH1_SEGMENT, "up"])
    run([IP, "-n", netns, "link", "set", "eth1", "up"])


def make_namespace_on_bridge(lab, state, netns, veth, address):
    """A network namespace whose eth0 (ADDRESS/24) is a veth enslaved to the lab bridge."""
    run([IP, "netns", "add", netns])
    state["netns"][netns] = netns_inode(netns)
    save_state(lab, state)
    run([IP, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns])
    state["links"].append(veth)
    save_state(lab, state)
    run([IP, "link", "set", veth, "master", lab.bridge, "up"])
    run([IP, "-n", netns, "addr", "add", f"{address}/24", "dev", "eth0"])
    run([IP, "-n", netns, "link", "set", "lo", "up"])
    run([IP, "-n", netns, "link", "set", "eth0", "up"])


def enter_cgroup(path):
    """Popen preexec: move the child into the host's cgroup before it unshares the cgroup ns."""
    def move_self():
        if path:
            with open(os.path.join(path, "cgroup.procs"), "w", encoding="ascii") as procs:
                procs.write("0")
    return move_self


def start_host(lab, state, index, lower):
    netns = lab.netns(index)
    make_namespace_on_bridge(lab, state, netns, lab.veth(index), lab.address(index))
    add_second_nic(lab, netns, index)
    sdhosts.start_host(lab, state, index, lower)


def record_init(state, name):
    return sdhosts.record_leader(state["hosts"][name])


def ssh_banner(address, timeout=0.5):
    try:
        with socket.create_connection((address, 22), timeout=timeout) as connection:
            connection.settimeout(timeout)
            return connection.recv(64).startswith(b"SSH-")
    except OSError:
        return False


def yaml_string(value):
    return json.dumps(str(value))  # a JSON string is a valid YAML double-quoted scalar


def inventory_text(lab, state):
    lines = ["# written by tests/lab/labctl; removed by labctl down", "all:", "  children:",
             "    nixos_hosts:", "      hosts:"]
    for name in sorted(state["hosts"], key=host_index):
        lines += [f"        {name}:",
                  f"          ansible_host: {yaml_string(state['hosts'][name]['address'])}"]
    lines += ["      vars:",
              "        ansible_user: root",
              f"        ansible_ssh_private_key_file: {yaml_string(lab.path('ssh', 'client_key'))}",
              "        ansible_ssh_common_args: "
              + yaml_string("-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"),
              f"        ansible_python_interpreter: {yaml_string(HOST_PYTHON)}",
              f"        lab_outside_address: {yaml_string(lab.outside_address)}",
              "        lab_uplink: eth0", ""]
    return "\n".join(lines)


def ansible_cfg_text(lab):
    return "\n".join([
        "# written by tests/lab/labctl; removed by labctl down",
        "[defaults]",
        f"inventory = {lab.inventory}",
        f"collections_path = {os.path.join(REPO, '.build')}",
        f"home = {lab.path('ansible')}",
        f"local_tmp = {lab.path('ansible', 'tmp')}",
        "remote_tmp = /tmp/.ansible/tmp",
        "host_key_checking = False",
        "forks = 10",
        f"interpreter_python = {HOST_PYTHON}",
        "timeout = 5",
        "",
        "[ssh_connection]",
        "pipelining = True",
        "ssh_args = -o ControlMaster=auto -o ControlPersist=60s"
        " -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
        f"control_path_dir = {lab.control_dir}",
        "retries = 0",
        "",
    ])


def ensure_collection_link():
    """<repo>/.build/ansible_collections/nixfleet/containers -> the repository itself."""
    namespace_dir = os.path.join(REPO, ".build", "ansible_collections", "nixfleet")
    link = os.path.join(namespace_dir, "containers")
    if not os.path.lexists(link):
        os.makedirs(namespace_dir, exist_ok=True)
        os.symlink(os.path.relpath(REPO, namespace_dir), link)


def write_client_files(lab, state):
    os.makedirs(lab.control_dir, exist_ok=True)
    os.makedirs(lab.path("ansible", "tmp"), exist_ok=True)
    write_atomically(lab.inventory, inventory_text(lab, state))
    write_atomically(lab.ansible_cfg, ansible_cfg_text(lab))
    ensure_collection_link()


def stop_hosts(state):
    """SIGTERM every host's supervisor (systemd as PID 1 would take it as "re-execute"): it asks
    nspawn for a clean poweroff. SIGKILL what is left: unshare --fork ignores SIGTERM, SIGKILL
    makes --kill-child kill the PID namespace (nested containers included)."""
    hosts = list(state.get("hosts", {}).values())
    for host in hosts:
        send_signal(host.get("supervisor"), signal.SIGTERM)
    parents = [host.get("unshare") for host in hosts]
    timeout = sdhosts.STOP_TIMEOUT
    stubborn = wait_for_exit(parents + [host.get("init") for host in hosts], timeout)
    if stubborn:
        print(f"labctl: SIGKILL to {len(stubborn)} host processes still running after {timeout:g}s",
              file=sys.stderr)
    for record in stubborn:
        send_signal(record, signal.SIGKILL)
    return wait_for_exit(stubborn, 2.0)


def control_master_pid(socket_path):
    result = run([SSH, "-O", "check", "-o", f"ControlPath={socket_path}", "lab"],
                 check=False, timeout=5)
    text = result.stderr + result.stdout
    if "pid=" not in text:
        return None
    return int(text.split("pid=", 1)[1].split(")", 1)[0])


def tcp_peers(pid):
    """Remote IPv4 addresses of PID's TCP sockets (a mux master's title hides its host)."""
    inodes = set()
    with contextlib.suppress(OSError):
        for descriptor in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{descriptor}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    peers = set()
    with contextlib.suppress(OSError), open(f"/proc/{pid}/net/tcp", encoding="ascii") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                remote = bytes.fromhex(fields[2].split(":")[0])[::-1]
                peers.add(socket.inet_ntoa(remote))
    return peers


def close_control_masters(control_dir, address=None):
    """Ask Ansible's ControlPersist ssh masters to exit (those to ADDRESS only, if given)."""
    with contextlib.suppress(FileNotFoundError):
        for entry in os.listdir(control_dir):
            socket_path = os.path.join(control_dir, entry)
            if address is not None:
                pid = control_master_pid(socket_path)
                if pid is None or address not in tcp_peers(pid):
                    continue
            run([SSH, "-O", "exit", "-o", f"ControlPath={socket_path}", "lab"],
                check=False, timeout=5)


def command_exec(lab, name, argv):
    if not argv:
        raise LabError("exec needs a command: labctl exec HOST -- ARGV...")
    state = load_state(lab)
    init = running_init(state, name)
    # join the host's cgroup first, so the command sits inside the host's cgroup namespace
    enter_cgroup(sdhosts.leader_cgroup(init))()
    environment = {"PATH": CONTRACT_PATH, "HOME": "/root", "USER": "root", "LOGNAME": "root",
                   "SHELL": "/bin/bash", "LANG": "C.UTF-8"}
    if "TERM" in os.environ:
        environment["TERM"] = os.environ["TERM"]
    os.execve(NSENTER, sdhosts.exec_argv(init, argv), environment)


def command_reboot(lab, name):
    """A real reboot of the host's systemd (labkit.sdhosts.reboot)."""
    state = load_state(lab)
    host_record(state, name)

    def run_in_host(argv):
        leader = sdhosts.current_leader(state, name)
        return run(sdhosts.exec_argv(leader, argv), check=False, timeout=120).stdout
    return sdhosts.reboot(lab, state, name, run_in_host, wait_for_banner)


def wait_for_banner(address, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if ssh_banner(address):
            return True
        time.sleep(0.1)
    return False
