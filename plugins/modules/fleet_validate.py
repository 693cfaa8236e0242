#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: fleet_validate
short_description: Check fleet specifications (the containers of hosts) against the collection's JSON Schema
version_added: 0.1.0
description:
  - Validates the container specs of one or more hosts on the controller, before anything
    changes on any host, with the collection's JSON Schema (C(docs/fleet-spec.md)) and the
    collection's own rules (container names, mutually exclusive guest options, address pairs,
    ports, mounts and flags the conf file could not carry).
  - Explicit addresses must be unique across the checked specs (the fleet, with O(hosts)); a local
    address belongs to one container, a host address to one host (its containers may share it).
    The error names both hosts.
  - "Every error names the host, the container and the field path, for example
    C(host2: container web: containers[1].health_check.http.port: 70000 is greater than the maximum of 65535)."
  - Runs on the controller only (an action plugin); nothing is sent to the hosts.
author:
  - nixfleet.containers developers (@nixfleet)
extends_documentation_fragment:
  - nixfleet.containers._attributes
attributes:
  check_mode:
    support: full
    details:
      - This action does not modify state.
  diff_mode:
    support: none
  idempotent:
    support: full
  action:
    support: full
    description: Indicates this has a corresponding action plugin so some parts of the options can be executed on the controller.
requirements:
  - The Python library C(jsonschema) (4.17 or newer) on the controller.
options:
  containers:
    description:
      - The container list to check, as the current host's spec.
      - Mutually exclusive with O(hosts). When neither is given, the current host's variable O(variable) is checked.
    type: raw
  hosts:
    description:
      - Check the variable O(variable) of each of these inventory hosts (from C(hostvars)), for
        example C("{{ ansible_play_hosts_all }}") with C(run_once=true) to check the whole fleet in one task.
    type: list
    elements: str
  variable:
    description: The inventory variable that holds a host's container list.
    type: str
    default: containers
notes:
  - The schema itself is C(FLEET_SCHEMA) in the collection's C(plugins/module_utils/_fleet_schema.py).
'''

EXAMPLES = r'''
- name: Check every host's spec once, before the rollout changes anything
  nixfleet.containers.fleet_validate:
    hosts: "{{ ansible_play_hosts_all }}"
  run_once: true

- name: Check one list
  nixfleet.containers.fleet_validate:
    containers:
      - name: web
        settings: {services: {nginx: {enable: true}}}
        health_check:
          http: {port: 80, path: /, expect_status: 200, from: host}
          retries: 5
          delay: 1
'''

RETURN = r'''
valid:
  description: Whether every checked spec is valid.
  returned: always
  type: bool
  sample: false
errors:
  description: One entry per problem.
  returned: always
  type: list
  elements: dict
  contains:
    host:
      description: The host whose spec has the problem.
      type: str
    container:
      description: The container's name (when it has a usable one).
      type: str
    index:
      description: The container's position in the host's list.
      type: int
    path:
      description: The field path, for example C(containers[1].forward_ports[0].host_port).
      type: str
    message:
      description: What is wrong.
      type: str
  sample: [{"host": "host2", "container": "web", "index": 1, "path": "containers[1].forward_ports[0].host_port",
            "message": "70000 is greater than the maximum of 65535"}]
hosts:
  description: The hosts whose specs were checked.
  returned: always
  type: list
  elements: str
  sample: ["host1", "host2"]
containers:
  description: Per host, the container list as the M(nixfleet.containers.nixos_containers) module takes it
    (the rollout fields C(health_check), C(service_group) and C(tags) left out).
  returned: always
  type: dict
  sample: {"host1": [{"name": "web", "settings": {"services": {"nginx": {"enable": true}}}}]}
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.nixfleet.containers.plugins.module_utils._errors import NixfleetError
from ansible_collections.nixfleet.containers.plugins.module_utils._host import run_module


def main():
    module = AnsibleModule(
        argument_spec=dict(
            containers=dict(type='raw'),
            hosts=dict(type='list', elements='str'),
            variable=dict(type='str', default='containers'),
        ),
        mutually_exclusive=[('containers', 'hosts')],
        supports_check_mode=True,
    )

    def refuse():
        raise NixfleetError('nixfleet.containers.fleet_validate runs on the controller through its action plugin')

    run_module(module, refuse)


if __name__ == '__main__':
    main()
