#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: nixos_container_nat
short_description: Masquerade and port forwards for NixOS containers on the host
version_added: 0.1.0
description:
  - Gives containers with a private network access to the outside (masquerade or SNAT of
    traffic from internal interfaces and source ranges out of one external interface) and
    forwards host ports to containers (DNAT), as NixOS C(networking.nat) does, without a host rebuild.
  - "With the V(nftables) backend the module owns one table per family (O(table), default
    C(nixfleet_nat)); it reads it with C(nft -j), renders the whole table and replaces it in ONE
    transaction (C(nft -j -f)), so there is never a moment without rules. NixOS's own
    C(nixos-nat) table, systemd-nspawn's table and every other table are left alone."
  - With the V(iptables) backend the module owns three chains in table C(nat), jumped to from
    C(PREROUTING), C(POSTROUTING) and C(OUTPUT); it checks them with C(-C) and replaces them with
    one C(iptables-restore --noflush).
  - "Interface wildcards: C(ve-+) and C(ve-*) both mean every interface whose name starts with
    C(ve-); each backend writes its own spelling (in nftables C(ve-+) would match nothing, NixOS issue 72580)."
  - A second run with the same arguments changes nothing and does not reload the rules.
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
      - The diff shows the forwarding sysctls and the owned ruleset before and after.
  idempotent:
    support: full
options:
  state:
    description:
      - V(present) the owned table (or chains) holds exactly the rules of the options.
      - V(absent) the owned table (or chains) is removed; nothing else is touched and the sysctls are left as they are.
    type: str
    choices: [absent, present]
    default: present
  backend:
    description:
      - V(nftables), V(iptables), or V(auto) - the backend the module already uses on the host,
        else nftables when C(nft) exists and C(iptables) is absent or its nf_tables flavour.
    type: str
    choices: [auto, nftables, iptables]
    default: auto
  table:
    description:
      - Name of the owned nftables table; for iptables, the chains are its upper-case form with
        C(-PRE), C(-POST) and C(-OUT) appended. Never C(nixos-nat).
    type: str
    default: nixfleet_nat
  external_interface:
    description:
      - The interface traffic leaves by (masquerade) and forwarded ports arrive on. Required when
        O(internal_interfaces), O(internal_ips) or O(forwards) is set.
    type: str
  external_ip:
    description:
      - SNAT to this IPv4 address instead of masquerading; forwards then only match packets addressed to it.
    type: str
  external_ip6:
    description: SNAT to this IPv6 address instead of masquerading (with O(ipv6=true)).
    type: str
  internal_interfaces:
    description:
      - Traffic entering on these interfaces and leaving by O(external_interface) is masqueraded.
        A trailing C(+) or C(*) matches every interface with that prefix (C(ve-*) covers every container veth).
    type: list
    elements: str
    default: []
  internal_ips:
    description: Traffic from these source addresses or CIDR ranges leaving by O(external_interface) is masqueraded.
    type: list
    elements: str
    default: []
  forwards:
    description:
      - Port forwards (DNAT) from O(external_interface) to a container.
    type: list
    elements: dict
    default: []
    suboptions:
      proto:
        description: Protocol.
        type: str
        choices: [tcp, udp]
        default: tcp
      host_port:
        description: Port or range (C(8000-8010)) on the host.
        type: raw
        required: true
      destination:
        description:
          - C(ADDRESS:PORT), C(ADDRESS:FIRST-LAST), C([IPV6]:PORT) or just C(ADDRESS) (the port is kept).
        type: str
        required: true
      loopback_ips:
        description:
          - Host addresses for which the forward also works from the host itself and from the
            internal side (hairpin), for example the host's address on O(external_interface).
        type: list
        elements: str
        default: []
  ipv6:
    description: Also NAT IPv6 (an C(ip6) table, or ip6tables) and switch on IPv6 forwarding.
    type: bool
    default: false
  ip_forward:
    description:
      - Switch on IP forwarding (C(net.ipv4.conf.all.forwarding) and C(.default.forwarding), and
        the IPv6 ones with O(ipv6=true)), as NixOS C(networking.nat) does. Only with O(state=present).
    type: bool
    default: true
  netns:
    description: Work in this network namespace of the host (a name under C(/run/netns)) instead of the host's own.
    type: str
requirements:
  - C(nft) (backend nftables) or C(iptables) and C(iptables-restore) (backend iptables) on the host.
notes:
  - Rules set by this module are runtime state; they do not survive a reboot of the host (apply the
    play at boot, or use NixOS C(networking.nat) for persistent rules).
  - A NixOS host that also enables C(networking.nat) has its own C(nixos-nat) rules; both apply.
seealso:
  - module: nixfleet.containers.nixos_container_network
'''

EXAMPLES = r'''
- name: Containers reach the outside through eth0; host port 8080 goes to web's nginx
  nixfleet.containers.nixos_container_nat:
    external_interface: eth0
    internal_interfaces: ["ve-*"]
    forwards:
      - host_port: 8080
        destination: 10.233.1.2:80

- name: The same with iptables, SNAT to a fixed address and a UDP range
  nixfleet.containers.nixos_container_nat:
    backend: iptables
    external_interface: eth0
    external_ip: 192.0.2.10
    internal_ips: [10.233.0.0/16]
    forwards:
      - proto: udp
        host_port: 60000-60010
        destination: 10.233.2.2

- name: Remove everything the module set up
  nixfleet.containers.nixos_container_nat:
    state: absent
'''

RETURN = r'''
backend:
  description: The backend used.
  returned: always
  type: str
  sample: nftables
table:
  description: The owned table (nftables) or the base of the owned chains' names (iptables).
  returned: always
  type: str
  sample: nixfleet_nat
rules_changed:
  description: Whether the ruleset was (or, in check mode, would be) replaced.
  returned: always
  type: bool
  sample: false
ruleset:
  description: The owned ruleset after the run, as text.
  returned: always
  type: str
  sample: "table ip nixfleet_nat {\n\tchain pre {\n..."
sysctls:
  description: The forwarding sysctls the module manages and their values after the run.
  returned: always
  type: dict
  sample: {"net.ipv4.conf.all.forwarding": "1", "net.ipv4.conf.default.forwarding": "1"}
actions:
  description: The commands that changed the host (argv lists); empty in check mode and when nothing changed.
  returned: always
  type: list
  elements: list
  sample: [["/usr/sbin/nft", "-j", "-f", "-"]]
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.nixfleet.containers.plugins.module_utils._host import run_module
from ansible_collections.nixfleet.containers.plugins.module_utils._nat import Host, NatManager


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type='str', choices=['absent', 'present'], default='present'),
            backend=dict(type='str', choices=['auto', 'nftables', 'iptables'], default='auto'),
            table=dict(type='str', default='nixfleet_nat'),
            external_interface=dict(type='str'),
            external_ip=dict(type='str'),
            external_ip6=dict(type='str'),
            internal_interfaces=dict(type='list', elements='str', default=[]),
            internal_ips=dict(type='list', elements='str', default=[]),
            forwards=dict(type='list', elements='dict', default=[], options=dict(
                proto=dict(type='str', choices=['tcp', 'udp'], default='tcp'),
                host_port=dict(type='raw', required=True),
                destination=dict(type='str', required=True),
                loopback_ips=dict(type='list', elements='str', default=[]),
            )),
            ipv6=dict(type='bool', default=False),
            ip_forward=dict(type='bool', default=True),
            netns=dict(type='str'),
        ),
        supports_check_mode=True,
    )
    host = Host.of(module, netns=module.params['netns'])

    def work():
        result = NatManager(module.params, host, check_mode=module.check_mode).run()
        diff = result.pop('diff')
        if module._diff:
            result['diff'] = diff
        return result

    run_module(module, work, partial=lambda: dict(actions=host.actions))


if __name__ == '__main__':
    main()
