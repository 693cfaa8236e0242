"""The nixos_containers inventory plugin against the lab: discovery over SSH, groups, compose,
unsafe values, caching, and a play against its groups through the connection plugin."""

import json
import subprocess

import pytest

from plugin_helpers import lab_bin, local_address, run_play

pytestmark = pytest.mark.lab

SOURCE = """
plugin: nixfleet.containers.nixos_containers
fleet:
  host1:
    - name: pyc
      tags: [frontend, blue]
      service_group: web
      vars:
        note: "{{ lookup('pipe', 'echo INJECTED') }}"
    - ghost
  host2:
    - name: bare
      service_group: web
    - name: gone
keyed_groups:
  - key: nixos_container_kind
    prefix: kind
groups:
  python_ready: "'frontend' in nixos_container_tags"
compose:
  ansible_python_interpreter: "'/usr/bin/python3'"
"""


def write_source(tmp_path, extra=""):
    path = tmp_path / "fleet.nixos_containers.yml"
    path.write_text(SOURCE + extra, encoding="utf-8")
    return str(path)


def plain(value):
    """ansible-inventory's JSON with the unsafe markers taken off."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def inventory(lab, *args, source):
    proc = subprocess.run([lab_bin("ansible-inventory"), "-i", lab.inventory, "-i", source, *args],
                          capture_output=True, text=True, timeout=120, env=lab.ansible_environment(),
                          check=False)
    assert proc.returncode == 0, proc.stderr
    return proc


def test_graph_groups_by_host_tag_service_and_state(containers, tmp_path):
    proc = inventory(containers, "--list", source=write_source(tmp_path))
    data = json.loads(proc.stdout)

    def members(group):
        return sorted(data.get(group, {}).get("hosts", []))

    assert members("nixos_containers") == ["bare.host1", "bare.host2", "ghost.host1", "gone.host2",
                                           "off.host1", "pyc.host1"]
    assert members("nixos_host_host1") == ["bare.host1", "ghost.host1", "off.host1", "pyc.host1"]
    assert members("nixos_tag_frontend") == members("nixos_tag_blue") == ["pyc.host1"]
    assert members("nixos_service_web") == ["bare.host2", "pyc.host1"]
    assert members("nixos_state_up") == ["bare.host1", "bare.host2", "pyc.host1"]
    assert members("nixos_state_down") == ["off.host1"]
    assert members("nixos_state_absent") == ["ghost.host1", "gone.host2"]
    assert members("kind_imperative") == ["bare.host1", "bare.host2", "off.host1", "pyc.host1"]
    assert members("python_ready") == ["pyc.host1"]
    raw = data["_meta"]["hostvars"]["pyc.host1"]
    assert raw["nixos_container_name"] == {"__ansible_unsafe": "pyc"}     # marked unsafe
    assert raw["nixos_container_tags"] == [{"__ansible_unsafe": "frontend"}, {"__ansible_unsafe": "blue"}]
    pyc = plain(raw)
    assert pyc["ansible_connection"] == "nixfleet.containers.nixos_container"
    assert pyc["ansible_host"] == containers.address("host1")
    assert pyc["ansible_ssh_private_key_file"] == containers.private_key
    assert pyc["nixos_container_name"] == "pyc"
    assert pyc["nixos_container_local_address"] == local_address(containers, "host1", "pyc")
    assert pyc["ansible_python_interpreter"] == "/usr/bin/python3"
    graph = inventory(containers, "--graph", source=write_source(tmp_path)).stdout
    assert "@nixos_service_web:" in graph and "|--pyc.host1" in graph


def test_values_stay_unsafe_and_plays_run_against_the_groups(containers, tmp_path):
    source = write_source(tmp_path)
    rc, report, output = run_play(containers, """
        - hosts: nixos_service_web:&nixos_state_up
          gather_facts: false
          tasks:
            - name: inside
              ansible.builtin.raw: hostname
            - name: note
              ansible.builtin.debug: {var: note}
              when: inventory_hostname == 'pyc.host1'
        - hosts: python_ready
          gather_facts: true
          tasks:
            - name: python
              ansible.builtin.command: hostname
              changed_when: false
    """, [containers.inventory, source])
    assert rc == 0, output
    assert {host: r["stdout"].strip() for host, r in report["inside"].items()} == \
        {"pyc.host1": "pyc", "bare.host2": "bare"}
    assert report["note"]["pyc.host1"]["note"] == "{{ lookup('pipe', 'echo INJECTED') }}"
    assert report["python"]["pyc.host1"]["stdout"] == "pyc"
    assert report["Gathering Facts"]["pyc.host1"]["ansible_facts"]["ansible_hostname"] == "pyc"


def test_ssh_mode_points_at_the_container_address(containers, tmp_path):
    data = json.loads(inventory(containers, "--list", source=write_source(tmp_path, "connection: ssh\n")).stdout)
    pyc = plain(data["_meta"]["hostvars"]["pyc.host1"])
    assert pyc["ansible_host"] == local_address(containers, "host1", "pyc")
    assert "ansible_connection" not in pyc


def test_cache_answers_while_a_host_is_unreachable(containers, tmp_path):
    cache = tmp_path / "cache"
    source = write_source(tmp_path, "cache: true\ncache_plugin: ansible.builtin.jsonfile\n"
                                    "cache_connection: %s\ntimeout: 3\n" % cache)
    first = json.loads(inventory(containers, "--list", source=source).stdout)
    assert any(cache.iterdir())
    containers.fault("host1", "unreachable")
    try:
        proc = inventory(containers, "--list", source=source)
        cached = json.loads(proc.stdout)
        assert "could not ask" not in proc.stderr
        assert cached["nixos_state_up"] == first["nixos_state_up"]
        fresh = inventory(containers, "--list", "--flush-cache", source=source)
        assert "could not ask host host1" in fresh.stderr
        states = json.loads(fresh.stdout)
        assert sorted(states["nixos_state_unknown"]["hosts"]) == ["ghost.host1", "pyc.host1"]
    finally:
        containers.clear_faults()


SPEC_VARS = """
all:
  hosts:
    host2:
      containers:
        - name: specd
          service_group: api
          tags: [green]
          settings: {services: {nginx: {enable: true}}}
        - name: bare
          service_group: api
"""


def test_fleet_spec_variable_adds_containers(containers, tmp_path):
    """The roles' `containers` host variable is a fleet source too; `fleet:` wins where both name one."""
    spec_vars = tmp_path / "spec_vars.yml"
    spec_vars.write_text(SPEC_VARS, encoding="utf-8")
    proc = subprocess.run([lab_bin("ansible-inventory"), "-i", containers.inventory, "-i", str(spec_vars),
                           "-i", write_source(tmp_path), "--list"],
                          capture_output=True, text=True, timeout=120, env=containers.ansible_environment(),
                          check=False)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert sorted(data["nixos_service_api"]["hosts"]) == ["specd.host2"]
    assert "specd.host2" in data["nixos_tag_green"]["hosts"]
    assert "specd.host2" in data["nixos_state_absent"]["hosts"]
    assert "bare.host2" in data["nixos_service_web"]["hosts"]
