#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: nixos_container
short_description: Manage one NixOS container (systemd-nspawn) on a NixOS host
version_added: 0.1.0
description:
  - Creates, updates, starts, stops, restarts, rolls back and destroys an imperative NixOS
    container, the kind C(nixos-container create) makes, idempotently.
  - The module reads the container's state once (its conf file, C(configuration.nix), profile
    generations and C(systemctl show)), computes a plan (V(noop), V(create), V(reload),
    V(restart), V(recreate), V(rollback), V(start), V(stop), V(configure), V(destroy)) with
    human-readable reasons, and then carries it out. Check mode returns the plan and diff only.
  - A changed guest configuration is activated in place (C(nixos-container update), which
    reloads a running container). A changed conf file (addresses, ports, bridge, bind mounts,
    nspawn flags) is only read when the container starts, so it is applied by a stop and a start.
  - Host-side options that C(nixos-container create) cannot set are written into the
    container's conf file as the declarative NixOS module writes them, so the C(container@)
    unit reads them at the next start.
  - Declarative containers (defined in the host's C(configuration.nix), whose conf file is a
    read-only link into the Nix store) are reported and can be started and stopped, but are
    never modified or destroyed.
  - Options left unset keep the container's current value; set an empty list to remove all
    ports, mounts or flags.
author:
  - nixfleet.containers developers (@nixfleet)
extends_documentation_fragment:
  - nixfleet.containers._attributes
  - nixfleet.containers._nixos
  - nixfleet.containers._container_options
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details:
      - The diff shows the conf file, the container's C(configuration.nix) and the run state before and after.
      - In check mode the line C(NIXFLEET_SYSTEM) of the conf (the store path of the system a build makes) keeps its old
        value, or is left out for a new container, because it is known only after the build; the diff of the real run shows it.
  idempotent:
    support: partial
    details:
      - O(restart=true), O(recreate=true) and O(rollback=true) act on every run.
'''

EXAMPLES = r'''
- name: A container that comes back after a reboot, with resource limits
  nixfleet.containers.nixos_container:
    name: api
    config: |
      services.nginx.enable = true;
    auto_start: true
    cpu_quota: 50%
    memory_max: 1G
    tasks_max: "512"
    unit_properties:
      CPUWeight: 50

- name: A web container that runs nginx
  nixfleet.containers.nixos_container:
    name: web
    settings:
      services:
        nginx:
          enable: true
      networking:
        firewall:
          allowedTCPPorts: [80]

- name: The same, with a fixed address and a forwarded port
  nixfleet.containers.nixos_container:
    name: web
    host_address: 10.233.7.1
    local_address: 10.233.7.2
    forward_ports:
      - host_port: 8080
        container_port: 80
    config: |
      services.nginx.enable = true;

- name: Build from a flake, remembering the attribute
  nixfleet.containers.nixos_container:
    name: api
    flake: /srv/flakes/api#api

- name: Roll the container back to its previous generation
  nixfleet.containers.nixos_container:
    name: web
    rollback: true

- name: Stop it
  nixfleet.containers.nixos_container:
    name: web
    state: stopped

- name: Destroy it
  nixfleet.containers.nixos_container:
    name: web
    state: absent
'''

RETURN = r'''
action:
  description: The planned action.
  returned: always
  type: str
  sample: reload
reasons:
  description: Why the action is needed, in words.
  returned: always
  type: list
  elements: str
  sample: ["the guest configuration changed"]
plan:
  description: The planned action, its ordered steps and reasons.
  returned: always
  type: dict
  sample: {"action": "restart", "steps": ["stop", "write_conf", "start"], "reasons": ["HOST_PORT changes from '' to 'tcp:8080:80'"]}
actions:
  description: The commands that ran (argv lists), in order; empty in check mode.
  returned: always
  type: list
  elements: list
  sample: [["/run/current-system/sw/bin/nixos-container", "start", "web"]]
container:
  description: Facts about the container after the run (before it, in check mode); empty when it does not exist.
  returned: always
  type: dict
  contains:
    name:
      description: Name.
      type: str
    kind:
      description: V(imperative) or V(declarative).
      type: str
    state:
      description: V(up) when the unit is active, else V(down) (as C(nixos-container status)).
      type: str
    active_state:
      description: The unit's ActiveState.
      type: str
    conf:
      description: The conf file's keys and values.
      type: dict
    host_address:
      description: Host-side address (IPv4, or IPv6 as NixOS accepts it).
      type: str
    local_address:
      description: Container address (IPv4, or IPv6 as NixOS accepts it).
      type: str
    generation:
      description: Current generation of the container's profile.
      type: int
    system_path:
      description: Store path of the current generation.
      type: str
  sample: {"name": "web", "kind": "imperative", "state": "up", "active_state": "active",
           "host_address": "10.233.1.1", "local_address": "10.233.1.2", "generation": 2}
generation_before:
  description: Profile generation before the run.
  returned: when the container existed
  type: int
  sample: 3
generation_after:
  description: Profile generation after the run.
  returned: when the container exists after the run
  type: int
  sample: 2
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.nixfleet.containers.plugins.module_utils._container import (
    ContainerManager,
    container_argument_spec,
    CONTAINER_MUTUALLY_EXCLUSIVE,
)
from ansible_collections.nixfleet.containers.plugins.module_utils._host import run_module


def main():
    module = AnsibleModule(
        argument_spec=container_argument_spec(),
        mutually_exclusive=CONTAINER_MUTUALLY_EXCLUSIVE,
        supports_check_mode=True,
    )
    manager = ContainerManager(module)
    run_module(module, manager.run, partial=manager.partial_result)


if __name__ == '__main__':
    main()
