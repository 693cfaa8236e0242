"""The nixos_container connection plugin against real containers of the lab.

The lab's guests are busybox systems without Python: `raw` runs in every container; the
Python modules (setup, copy, template, command, fetch) run in ``pyc``, which sees the
machine's /usr read-only (a test-only bind mount made with the module's bind_mounts).
"""

import hashlib
import json
import os

import pytest

from plugin_helpers import direct_inventory, local_address, run_play

pytestmark = pytest.mark.lab

UNICODE = "Grüße, 世界 — ${not_a_var} \"quoted\" 'single' \\backslash\n\ttab 😀\n"


@pytest.fixture
def inventory(containers, tmp_path):
    return direct_inventory(containers, tmp_path / "inventory.json", ["pyc", "bare", "off", "ghost"])


def test_raw_runs_inside_the_container_namespaces(containers, inventory):
    rc, report, stderr = run_play(containers, """
        - hosts: bare
          gather_facts: false
          tasks:
            - name: look around
              ansible.builtin.raw: hostname; ip -4 -o addr show eth0; cat /proc/1/comm; echo to-stderr >&2; exit 3
              ignore_errors: true
    """, [inventory])
    result = report["look around"]["bare"]
    lines = result["stdout"].splitlines()
    assert result["rc"] == 3                                      # exit status passes through
    assert lines[0] == "bare"                                     # the container's UTS namespace
    assert local_address(containers, "host1", "bare") + "/" in lines[1]   # its network namespace
    assert "to-stderr" in result["stdout"] + result["stderr"]
    assert lines[2] != "systemd"                                  # its PID namespace, not the host's


def test_a_signal_or_exit_255_is_a_failed_task_not_unreachable(containers, inventory):
    rc, report, stderr = run_play(containers, """
        - hosts: bare
          gather_facts: false
          tasks:
            - name: killed
              ansible.builtin.raw: kill -9 $$
              ignore_errors: true
            - name: exit 255
              ansible.builtin.raw: echo out; echo err >&2; exit 255
              ignore_errors: true
    """, [inventory])
    killed, exited = report["killed"]["bare"], report["exit 255"]["bare"]
    assert not killed.get("unreachable") and killed["rc"] == 137, killed
    assert not exited.get("unreachable") and exited["rc"] == 255, exited
    assert "err" in exited["stdout"] + exited["stderr"] and "NIXFLEET" not in exited["stderr"], exited


def test_a_stopped_or_missing_container_is_unreachable(containers, inventory):
    rc, report, stderr = run_play(containers, """
        - hosts: off,ghost
          gather_facts: false
          tasks:
            - name: try
              ansible.builtin.raw: "true"
    """, [inventory])
    results = report["try"]
    assert rc == 4                                                # unreachable hosts
    assert results["off"]["unreachable"] is True
    assert "'off' is not running on its host 10.250." in results["off"]["msg"]
    assert results["ghost"]["unreachable"] is True
    assert "'ghost' does not exist on its host" in results["ghost"]["msg"]


@pytest.mark.parametrize("pipelining", ["true", "false"])
def test_python_modules_and_files_round_trip(containers, inventory, tmp_path, pipelining):
    blob = tmp_path / "blob.bin"
    blob.write_bytes(os.urandom(200000) + bytes(range(256)) + b"\0\r\n\xff")
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(300000))
    template = tmp_path / "t.j2"
    template.write_text("{{ greeting }}host={{ ansible_facts.hostname }}\n", encoding="utf-8")
    fetched = tmp_path / "fetched"
    rc, report, stderr = run_play(containers, """
        - hosts: pyc
          gather_facts: true
          vars:
            ansible_pipelining: %(pipelining)s
            greeting: %(unicode)s
          tasks:
            - name: copy binary
              ansible.builtin.copy: {src: "%(blob)s", dest: /root/blob.bin, mode: "0600"}
            - name: copy binary again
              ansible.builtin.copy: {src: "%(blob)s", dest: /root/blob.bin, mode: "0600"}
            - name: copy staged
              ansible.builtin.copy: {src: "%(big)s", dest: /tmp/big.bin}
              vars: {ansible_nixos_container_stream_limit: 1024}
            - name: copy unicode
              ansible.builtin.copy: {content: "{{ greeting }}", dest: "/root/grüße.txt"}
            - name: template
              ansible.builtin.template: {src: "%(template)s", dest: /root/t.txt}
            - name: command
              ansible.builtin.command: cat /root/grüße.txt
              changed_when: false
            - name: fetch binary
              ansible.builtin.fetch: {src: /root/blob.bin, dest: "%(fetched)s/", flat: false}
            - name: fetch from the container's tmpfs
              ansible.builtin.fetch: {src: /tmp/big.bin, dest: "%(fetched)s/big.bin", flat: true}
    """ % dict(pipelining=pipelining, unicode=json.dumps(UNICODE, ensure_ascii=False), blob=blob, big=big, template=template,
               fetched=fetched), [inventory])
    assert rc == 0, (report, stderr)
    facts = report["Gathering Facts"]["pyc"]["ansible_facts"]
    assert facts["ansible_hostname"] == "pyc"
    assert facts["ansible_default_ipv4"]["address"] == local_address(containers, "host1", "pyc")
    assert report["copy binary"]["pyc"]["changed"] is True or pipelining == "false"
    assert report["copy binary again"]["pyc"]["changed"] is False
    assert report["command"]["pyc"]["stdout"] == UNICODE.rstrip("\n")
    # What the container's root on the host holds is what was sent (a persistent path) ...
    root = "/var/lib/nixos-containers/pyc"
    on_host = containers.exec("host1", "sha256sum", root + "/root/blob.bin", root + "/root/grüße.txt",
                              root + "/root/t.txt", check=True).stdout.split()
    assert on_host[0] == hashlib.sha256(blob.read_bytes()).hexdigest()
    assert on_host[2] == hashlib.sha256(UNICODE.encode()).hexdigest()
    assert on_host[4] == hashlib.sha256(("%shost=pyc\n" % UNICODE).encode()).hexdigest()
    mode = containers.exec("host1", "stat", "-c", "%a", root + "/root/blob.bin", check=True).stdout
    assert mode.strip() == "600"
    # ... while /tmp is the container's own tmpfs: the file went into its mount namespace.
    assert containers.exec("host1", "test", "-e", root + "/tmp/big.bin").returncode == 1
    assert (fetched / "big.bin").read_bytes() == big.read_bytes()
    assert (fetched / "pyc" / "root" / "blob.bin").read_bytes() == blob.read_bytes()
    containers.exec("host1", "rm", "-f", root + "/root/blob.bin", check=True)


def test_become_inside_the_container(containers, inventory):
    rc, report, stderr = run_play(containers, """
        - hosts: pyc
          gather_facts: false
          tasks:
            # A NixOS guest has /var/tmp (1777, systemd-tmpfiles); the lab's busybox guest does not.
            - name: world-writable /var/tmp
              ansible.builtin.raw: mkdir -p /var/tmp && chmod 1777 /var/tmp
            - name: as nobody
              ansible.builtin.command: id -u
              become: true
              become_method: ansible.builtin.su
              become_user: nobody
              become_flags: "-s /bin/sh"
              vars: {ansible_pipelining: false}
    """, [inventory])
    assert rc == 0, (report["as nobody"]["pyc"].get("msg"), report["as nobody"]["pyc"].get("module_stdout"), stderr)
    assert report["as nobody"]["pyc"]["stdout"] == "65534"


def test_the_host_scratch_space_is_cleaned_up(containers):
    left = containers.exec("host1", "sh", "-c", "ls -d /tmp/.nixfleet-transfer.* 2>/dev/null || true",
                           check=True).stdout
    assert left.strip() == ""
