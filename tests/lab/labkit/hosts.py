"""The emulated NixOS hosts: namespaces on the lab bridge with hostinit as PID 1 and sshd,
and the client files (inventory, ansible.cfg, keys) that reach them."""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

from labkit.common import (CONTRACT_PATH, HOST_PYTHON, IP, LAB_SCRIPTS, NSENTER, REPO, SSH,
                           SSH_KEYGEN, UNSHARE, LabError, run, write_atomically)
from labkit.kernel import (cgroup_root, children, is_alive, namespace_inode, netns_inode,
                           process_record, send_signal, wait_for_exit)
from labkit import sdhosts
from labkit.state import host_index, host_record, load_state, save_state

READY_TIMEOUT = 15.0
GRACEFUL_TIMEOUT = 6.0  # hostinit needs up to 3 + 1 + 1 s for its own graceful path


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
    """The PID whose namespaces are the host's: hostinit, or the host's systemd."""
    host = host_record(state, name)
    if host.get("kind") == "systemd":
        return sdhosts.current_leader(state, name)
    if not is_alive(host.get("init")):
        raise LabError(f"{name} is not running (labctl status)")
    return host["init"]["pid"]


def host_running(host):
    if host.get("kind") == "systemd":
        return sdhosts.find_leader(host) is not None
    return is_alive(host.get("init"))


def add_second_nic(lab, netns, index):
    """eth1: a veth whose peer (hostN) sits in the outside namespace, for macvlans and
    interfaces moved into containers; no address (tests give it what they need)."""
    run([IP, "-n", lab.outside_netns, "link", "add", f"host{index}", "type", "veth", "peer",
         "name", "eth1", "netns", netns])
    run([IP, "-n", lab.outside_netns, "link", "set", f"host{index}", "up"])
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


def sshd_config(lab, index):
    ssh_dir = lab.path("ssh")
    return "\n".join([
        f"ListenAddress {lab.address(index)}:22",
        f"HostKey {ssh_dir}/host{index}_ed25519",
        "PidFile none",
        f"AuthorizedKeysFile {ssh_dir}/authorized_keys",
        "PermitRootLogin prohibit-password",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "StrictModes no",  # the keys live under the repo, not in a 0700 ~/.ssh
        "UseDNS no",
        "PrintMotd no",
        "PrintLastLog no",
        "MaxStartups 100:30:200",
        "MaxSessions 100",
        f"SetEnv PATH={CONTRACT_PATH}",  # overrides sshd's built-in default PATH
        "Subsystem sftp /usr/lib/openssh/sftp-server",
        "",
    ])


def enter_cgroup(path):
    """Popen preexec: move the child into the host's cgroup before it unshares the cgroup ns."""
    def move_self():
        if path:
            with open(os.path.join(path, "cgroup.procs"), "w", encoding="ascii") as procs:
                procs.write("0")
    return move_self


def start_host(lab, state, index, lower=None):
    name, netns = f"host{index}", lab.netns(index)
    make_namespace_on_bridge(lab, state, netns, lab.veth(index), lab.address(index))
    add_second_nic(lab, netns, index)
    if lab.kind == "systemd":
        sdhosts.start_host(lab, state, index, lower)
        return
    host_dir = lab.host_dir(index)
    os.makedirs(host_dir, exist_ok=True)
    config = os.path.join(host_dir, "sshd_config")
    write_atomically(config, sshd_config(lab, index), 0o600)
    cgroup = None
    if cgroup_root():
        cgroup = os.path.join(cgroup_root(), netns)
        os.makedirs(cgroup, exist_ok=True)
        state["cgroups"].append(cgroup)
        save_state(lab, state)
    argv = [NSENTER, f"--net=/run/netns/{netns}", "--",
            UNSHARE, "--mount", "--uts", "--ipc", "--pid", "--cgroup", "--fork",
            "--kill-child", "--mount-proc", "--",
            HOST_PYTHON, os.path.join(LAB_SCRIPTS, "hostinit"), "--hostname", name,
            "--address", lab.address(index), "--host-dir", host_dir, "--repo", REPO,
            "--lab-dir", lab.dir,
            "--sshd-config", config]
    with open(os.path.join(host_dir, "init.log"), "ab") as log:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                   start_new_session=True, preexec_fn=enter_cgroup(cgroup))
    state["hosts"][name] = {"index": index, "address": lab.address(index), "cgroup": cgroup,
                            "unshare": process_record(process.pid)}
    save_state(lab, state)


def record_init(state, name):
    """The init is the unshare parent's only child; remember it and its PID namespace."""
    host = state["hosts"][name]
    if host.get("kind") == "systemd":
        return sdhosts.record_leader(host)
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        if not is_alive(host["unshare"]):
            return False
        for child in children(host["unshare"]["pid"]):
            host["init"] = process_record(child)
            host["pid_ns"] = namespace_inode(child, "pid")
            if host["pid_ns"] is not None:
                return True
        time.sleep(0.01)
    return False


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
    """SIGTERM every host's init (it stops the runners first), then SIGKILL what is left.
    A real-systemd host's supervisor gets the SIGTERM instead (systemd as PID 1 would take it
    as "re-execute"): it asks nspawn for a clean poweroff."""
    hosts = list(state.get("hosts", {}).values())
    for host in hosts:
        send_signal(host.get("supervisor" if host.get("kind") == "systemd" else "init"), signal.SIGTERM)
    parents = [host.get("unshare") for host in hosts]
    timeout = max([GRACEFUL_TIMEOUT] + [sdhosts.STOP_TIMEOUT for h in hosts if h.get("kind") == "systemd"])
    stubborn = wait_for_exit(parents + [host.get("init") for host in hosts], timeout)
    # unshare --fork ignores SIGTERM; SIGKILL makes --kill-child kill the init, and with the
    # init the kernel kills the whole PID namespace (nested containers included)
    if stubborn and any(host.get("kind") == "systemd" for host in hosts):
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
    cgroup = host_record(state, name).get("cgroup")
    if host_record(state, name).get("kind") == "systemd":
        cgroup = sdhosts.leader_cgroup(init)
    if cgroup:
        enter_cgroup(cgroup)()
    environment = {"PATH": CONTRACT_PATH, "HOME": "/root", "USER": "root", "LOGNAME": "root",
                   "SHELL": "/bin/bash", "LANG": "C.UTF-8"}
    if "TERM" in os.environ:
        environment["TERM"] = os.environ["TERM"]
    # --wd without a value: the init's cwd (/root of the host); a value would be resolved
    # before nsenter enters the host's mount namespace
    if host_record(state, name).get("kind") == "systemd":
        os.execve(NSENTER, sdhosts.exec_argv(init, argv), environment)
    os.execve(NSENTER, [NSENTER, "-t", str(init), "--mount", "--uts", "--ipc", "--net",
                        "--pid", "--cgroup", "--wd", "--", *argv], environment)


def command_reboot(lab, name):
    """The host's systemd reboots: stop every running container cleanly, then start exactly
    those machines.target wants (the emulated `systemctl reboot`; sshd and the host stay)."""
    state = load_state(lab)
    if host_record(state, name).get("kind") == "systemd":
        def run_in_host(argv):
            leader = sdhosts.current_leader(state, name)
            return run(sdhosts.exec_argv(leader, argv), check=False, timeout=120).stdout
        return sdhosts.reboot(lab, state, name, run_in_host,
                              wait_for_banner)
    systemctl = os.path.join(os.path.realpath(LAB_SCRIPTS), "emulator", "systemctl")
    return command_exec(lab, name, [systemctl, "reboot"])


def wait_for_banner(address, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if ssh_banner(address):
            return True
        time.sleep(0.1)
    return False
