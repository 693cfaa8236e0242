#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: nixos_container_network
short_description: Host-side networking of NixOS containers - veths, bridges, addresses, routes, address pools
version_added: 0.1.0
description:
  - Manages the host side of a container's network as the NixOS container unit sets it up
    after start - C(ve-NAME) (or C(vb-NAME) on a bridge, or any extra veth given by O(interface))
    with its host addresses (IPv4 and IPv6) and the routes to the container's local addresses -
    and host bridges (create, addresses, MTU, up/down, delete).
  - Allocates host/local address pairs for a container from a pool (O(allocate)), stable per
    container name, avoiding every address in the host's container conf files, on its live links
    and routes, and in a fleet-wide list the caller passes in.
  - Addresses compare as normalised values (a bare IPv4 address is C(/32), IPv6 C(/128)) and as
    sets, so order and spelling do not matter. A second run changes nothing.
author:
  - nixfleet.containers developers (@nixfleet)
extends_documentation_fragment:
  - nixfleet.containers._attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details:
      - The diff shows each managed link (state, MTU, master, addresses, routes) before and after.
  idempotent:
    support: full
options:
  name:
    description:
      - The container. Its host-side interface is C(ve-NAME), or C(vb-NAME) with O(bridge).
      - Required by O(allocate).
    type: str
  interface:
    description: The host-side interface to manage, for example an extra veth; overrides the name derived from O(name).
    type: str
  state:
    description:
      - V(present) the interface has O(host_addresses) and routes to O(local_addresses).
      - V(absent) those addresses and routes are removed from the interface (a missing interface is fine).
    type: str
    choices: [absent, present]
    default: present
  host_addresses:
    description:
      - Addresses of the host side (C(HOST_ADDRESS), C(HOST_ADDRESS6)), with an optional C(/prefix).
      - Not set - the interface's addresses are left alone.
    type: list
    elements: str
  local_addresses:
    description:
      - The container's addresses (C(LOCAL_ADDRESS), C(LOCAL_ADDRESS6)); each gets a route through the interface.
    type: list
    elements: str
  unmanaged_addresses:
    description:
      - What to do with addresses on a managed link that are not in its list - V(keep) them or V(remove) them.
        IPv6 link-local addresses are always kept.
    type: str
    choices: [keep, remove]
    default: keep
  link_state:
    description: V(up) or V(down). With V(down) no routes are added (the kernel drops them on a down link).
    type: str
    choices: [up, down]
  bridge:
    description:
      - With O(bridge_state=present), enslave the interface to this bridge (it must exist or be listed in O(bridges)).
      - With O(bridge_state=absent), release the interface from this bridge.
    type: str
  bridge_state:
    description:
      - V(present) the interface is a port of O(bridge).
      - V(absent) the interface is not a port of O(bridge) - it is released when it is, and left alone when it is a
        port of another bridge or of none (so a second run changes nothing and another bridge's port is never
        touched). The bridge need not exist.
      - Only with O(bridge).
    type: str
    choices: [absent, present]
    default: present
  when_missing:
    description:
      - What to do when the interface does not exist (the container is not running). V(fail) or V(skip).
    type: str
    choices: [fail, skip]
    default: fail
  bridges:
    description: Host bridges, handled before the interface.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Bridge name.
        type: str
        required: true
      state:
        description: V(present) creates it, V(absent) deletes it.
        type: str
        choices: [absent, present]
        default: present
      addresses:
        description: Its addresses (not set - left alone).
        type: list
        elements: str
      mtu:
        description: Its MTU.
        type: int
      link_state:
        description: V(up) or V(down).
        type: str
        choices: [up, down]
        default: up
  netns:
    description: Work in this network namespace (a name under C(/run/netns)) instead of the host's own.
    type: str
  allocate:
    description:
      - Allocate the container's addresses from pools; the result is in RV(allocation).
      - A pool is split into blocks (C(/24) for IPv4 and C(/64) for IPv6 by default); the container
        gets a block's first two addresses (C(.1) host, C(.2) local). The first block tried comes from a
        hash of the container name, so a name gets the same block whatever else comes and goes; a
        container whose conf file (or own fleet entry) already has addresses in the pool keeps them.
      - Fails with a clear message when the pool has no free block.
    type: dict
    suboptions:
      pool:
        description: IPv4 pool.
        type: str
        default: 10.233.0.0/16
      block_prefix:
        description: Block size of the IPv4 pool (default C(24)).
        type: int
      pool6:
        description: IPv6 pool; not set - no IPv6 allocation.
        type: str
      block_prefix6:
        description: Block size of the IPv6 pool (default C(64)).
        type: int
      mode:
        description:
          - V(pair) host and local get host routes (C(/32), C(/128)) as C(nixos-container) does;
            V(prefix) they carry the block's prefix.
        type: str
        choices: [pair, prefix]
        default: pair
      fleet_allocations:
        description:
          - Allocations made elsewhere in the fleet (for example every host's RV(allocation) so far).
            Each is a dict with C(name), optional C(host), and C(host_address), C(local_address),
            C(host_address6), C(local_address6). Their addresses are never handed out again; an entry
            with this O(name) and C(host) equal to O(allocate.owner) (or no C(host)) is this container's own.
        type: list
        elements: dict
        default: []
      owner:
        description: This host's name in O(allocate.fleet_allocations), usually C(inventory_hostname).
        type: str
      scan_confs:
        description: Also avoid the addresses in the host's container conf files.
        type: bool
        default: true
      apply:
        description: Use the allocation as O(host_addresses) and O(local_addresses) on the interface.
        type: bool
        default: false
requirements:
  - pyroute2 on the managed host (Debian/Ubuntu package C(python3-pyroute2), 0.7 or newer; on NixOS
    C(python3Packages.pyroute2)).
notes:
  - The container unit itself configures C(ve-NAME) at every start (facts of NixOS containers);
    this module is for what the unit does not do (extra addresses, bridges, extra veths) and to
    repair or verify the host side.
seealso:
  - module: nixfleet.containers.nixos_container_nat
'''

EXAMPLES = r'''
- name: An address pair for web, unique in the fleet
  nixfleet.containers.nixos_container_network:
    name: web
    allocate:
      pool: 10.233.0.0/16
      pool6: fc00:233::/48
      owner: "{{ inventory_hostname }}"
      fleet_allocations: "{{ fleet_allocations | default([]) }}"
  register: web_net

- name: Extra IPv6 on the running container's veth, routed to the container
  nixfleet.containers.nixos_container_network:
    name: web
    host_addresses: ["{{ web_net.allocation.host_address }}", fc00::1]
    local_addresses: ["{{ web_net.allocation.local_address }}", fc00::2]

- name: A bridge for bridged containers
  nixfleet.containers.nixos_container_network:
    bridges:
      - name: br-ct
        addresses: [192.168.100.1/24]
        mtu: 1500

- name: Take the host's eth1 out of br0 again
  nixfleet.containers.nixos_container_network:
    interface: eth1
    bridge: br0
    bridge_state: absent
'''

RETURN = r'''
allocation:
  description: The container's addresses from the pools, and whether each family was kept from its conf, its fleet entry, or is new.
  returned: when O(allocate) is set
  type: dict
  sample: {"name": "web", "host": "host1", "host_address": "10.233.185.1", "local_address": "10.233.185.2",
           "source": {"4": "new"}}
interface:
  description: The managed interface after the run (before it, in check mode).
  returned: always
  type: dict
  sample: {"name": "ve-web", "state": "up", "mtu": 1500, "master": "", "kind": "veth",
           "addresses": ["10.233.1.1/32"], "routes": ["10.233.1.2/32"]}
missing:
  description: The interface did not exist and O(when_missing=skip) (or O(state=absent)) let that pass.
  returned: when the interface is missing
  type: bool
  sample: true
steps:
  description: What was (or in check mode would be) changed, in order.
  returned: always
  type: list
  elements: str
  sample: ["add 10.233.1.1/32 to ve-web", "add route 10.233.1.2/32 via ve-web"]
actions:
  description: The steps carried out; empty in check mode.
  returned: always
  type: list
  elements: str
  sample: ["create bridge br-ct"]
'''

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.nixfleet.containers.plugins.module_utils import _netlink
from ansible_collections.nixfleet.containers.plugins.module_utils._host import run_module
from ansible_collections.nixfleet.containers.plugins.module_utils._network import NetworkManager


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type='str'),
            interface=dict(type='str'),
            state=dict(type='str', choices=['absent', 'present'], default='present'),
            host_addresses=dict(type='list', elements='str'),
            local_addresses=dict(type='list', elements='str'),
            unmanaged_addresses=dict(type='str', choices=['keep', 'remove'], default='keep'),
            link_state=dict(type='str', choices=['up', 'down']),
            bridge=dict(type='str'),
            bridge_state=dict(type='str', choices=['absent', 'present'], default='present'),
            when_missing=dict(type='str', choices=['fail', 'skip'], default='fail'),
            bridges=dict(type='list', elements='dict', default=[], options=dict(
                name=dict(type='str', required=True),
                state=dict(type='str', choices=['absent', 'present'], default='present'),
                addresses=dict(type='list', elements='str'),
                mtu=dict(type='int'),
                link_state=dict(type='str', choices=['up', 'down'], default='up'),
            )),
            netns=dict(type='str'),
            allocate=dict(type='dict', options=dict(
                pool=dict(type='str', default='10.233.0.0/16'),
                block_prefix=dict(type='int'),
                pool6=dict(type='str'),
                block_prefix6=dict(type='int'),
                mode=dict(type='str', choices=['pair', 'prefix'], default='pair'),
                fleet_allocations=dict(type='list', elements='dict', default=[]),
                owner=dict(type='str'),
                scan_confs=dict(type='bool', default=True),
                apply=dict(type='bool', default=False),
            )),
        ),
        supports_check_mode=True,
    )
    if _netlink.PYROUTE2_IMPORT_ERROR:
        module.fail_json(msg=missing_required_lib('pyroute2 (Debian: python3-pyroute2)'),
                         exception=_netlink.PYROUTE2_IMPORT_ERROR)
    manager = NetworkManager(module.params, check_mode=module.check_mode)

    def work():
        result = manager.run()
        diff = result.pop('diff')
        if module._diff:
            result['diff'] = diff
        return result

    run_module(module, work, partial=manager.failure_details)


if __name__ == '__main__':
    main()
