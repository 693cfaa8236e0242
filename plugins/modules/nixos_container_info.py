#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: nixos_container_info
short_description: Facts about the NixOS containers of a host
version_added: 0.1.0
description:
  - Reports one container (O(name)) or every container of a NixOS host, imperative and
    declarative alike, from the conf files, the containers' C(configuration.nix), their
    profile generations and one C(systemctl show) call for all of them.
  - Never fails because a container does not exist; RV(exists) says so.
author:
  - nixfleet.containers developers (@nixfleet)
extends_documentation_fragment:
  - nixfleet.containers._attributes
  - nixfleet.containers._attributes.info_module
  - nixfleet.containers._nixos
options:
  name:
    description:
      - The container to report. When not set, every container of the host is reported.
    type: str
  leader_pid:
    description:
      - Also look up the leader PID (the container's init) of each running container with C(machinectl).
    type: bool
    default: true
'''

EXAMPLES = r'''
- name: Every container of the host
  nixfleet.containers.nixos_container_info:
  register: containers

- name: One container
  nixfleet.containers.nixos_container_info:
    name: web
  register: web

- name: Its IPv4 address as written in the conf (a /prefix is kept; null for an IPv6-only container)
  ansible.builtin.debug:
    msg: "{{ web.container.local_address }}"
  when: web.exists
'''

RETURN = r'''
exists:
  description: Whether the container named by O(name) exists.
  returned: when O(name) is set
  type: bool
  sample: true
container:
  description: The container named by O(name); empty when it does not exist.
  returned: when O(name) is set
  type: dict
  sample: {"name": "web", "kind": "imperative", "state": "up", "active_state": "active"}
containers:
  description: Every container reported (one element when O(name) is set and it exists).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Name.
      type: str
    kind:
      description: V(imperative) (a writable conf file) or V(declarative) (a read-only link from the host configuration).
      type: str
    state:
      description: V(up) when the unit is active, else V(down), as C(nixos-container status) prints it.
      type: str
    active_state:
      description: The C(container@NAME) unit's ActiveState (V(active), V(activating), V(failed), ...).
      type: str
    conf:
      description: The conf file's keys and values.
      type: dict
    private_network:
      description: Whether the container has its own network namespace.
      type: bool
    host_address:
      description: Host-side address (IPv4, or IPv6 as NixOS accepts it), as written in the conf.
      type: str
    local_address:
      description:
        - The container's address (IPv4, or IPv6 as NixOS accepts it), as written in the conf.
        - C(nixos-container show-ip) prints an IPv4 one without prefix.
      type: str
    host_address6:
      description: Host-side IPv6 address.
      type: str
    local_address6:
      description: The container's IPv6 address.
      type: str
    host_bridge:
      description: The host bridge the container is on, if any.
      type: str
    forward_ports:
      description: Forwarded ports (C(protocol), C(host_port), C(container_port)).
      type: list
      elements: dict
    bind_mounts:
      description: Bind mounts (C(mount_point), C(host_path), C(read_only)).
      type: list
      elements: dict
    auto_start:
      description:
        - Whether the container starts at boot, that is whether C(machines.target) wants C(container@NAME.service)
          (a link in C(machines.target.wants/) of C(/etc/systemd/system.control), C(/etc/systemd/system),
          C(/etc/systemd-mutable/system) or C(/run/systemd/system)). The conf's C(AUTO_START) is read by nothing.
      type: bool
    auto_start_link:
      description: The wants-link that makes the container start at boot, if any.
      type: str
    unit_properties:
      description: The C([Service]) properties of this collection's drop-in for C(container@NAME.service) (resource limits).
      type: dict
    configuration:
      description: The guest configuration text spliced into C(configuration.nix), when the file follows the nixos-container template.
      type: str
    flake:
      description: The flake reference the container is built from, if any.
      type: str
    flake_attr:
      description: The flake attribute recorded by this collection, if any.
      type: str
    system_path:
      description: Store path of the current generation.
      type: str
    generation:
      description: Current generation number of the container's profile.
      type: int
    generations:
      description: Every generation (C(number), C(path)).
      type: list
      elements: dict
    leader_pid:
      description: PID of the container's init on the host, when running and O(leader_pid=true).
      type: int
    main_pid:
      description: The unit's MainPID (systemd-nspawn).
      type: int
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.nixfleet.containers.plugins.module_utils._host import run_module
from ansible_collections.nixfleet.containers.plugins.module_utils._info import gather


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type='str'),
            leader_pid=dict(type='bool', default=True),
            nixos_container_bin=dict(type='path'),
        ),
        supports_check_mode=True,
    )
    run_module(module, lambda: dict(gather(module), changed=False))


if __name__ == '__main__':
    main()
