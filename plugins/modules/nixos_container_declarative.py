#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: nixos_container_declarative
short_description: Write a declarative NixOS container (containers.NAME) into the host configuration
version_added: 0.2.0
description:
  - Writes the container as a NixOS module file C(DIRECTORY/NAME.nix) holding
    C({ containers.NAME = { ... }; }), rendered from the same options
    M(nixfleet.containers.nixos_container) takes and checked by the same rules, and keeps the imports
    file C(DIRECTORY/default.nix) listing every container file it wrote, sorted.
  - "The host's C(configuration.nix) imports the directory once: C(imports = [ ./containers ];)
    (a directory import loads its C(default.nix))."
  - The module only writes files. Applying them is a separate, explicit step, C(nixos-rebuild switch),
    usually a handler notified by this task (see the examples). NixOS then creates the read-only conf
    C(/etc/nixos-containers/NAME.conf), the unit C(container@NAME.service) and, with O(auto_start), starts
    the container and restarts it whenever its definition changes.
  - After C(nixos-rebuild switch), the conf holds the same values M(nixfleet.containers.nixos_container)
    writes for the same options (NixOS orders the lines its own way, pins C(SYSTEM_PATH), and sorts
    bind mounts by mount point). O(ephemeral), O(tmpfs), O(additional_capabilities) and O(enable_tun)
    go into the container's own unit instead of the conf, and there O(enable_tun) also allows C(/dev/net/tun).
  - "Why a module of its own and not a mode of M(nixfleet.containers.nixos_container): that module
    manages a live container (plan, build, start, reload, roll back, destroy) and its options mean
    I(what the container is now); this one writes a definition that takes effect at the next rebuild
    and nothing else, with no run state, no rollback and no destroy. Keeping them apart keeps each
    one's options and results simple."
  - Declarative containers are part of the host's system, so they follow the host. Every
    C(nixos-rebuild switch), including one run only to update the host, rebuilds them, and restarts
    those with O(auto_start) whenever their system or settings changed. See the collection's
    C(docs/declarative.md) for which kind to choose.
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
      - The diff shows the container file and the imports file before and after.
  idempotent:
    support: full
options:
  name:
    description:
      - Name of the container, the attribute under C(containers) and the file name C(NAME.nix).
      - "The rules of M(nixfleet.containers.nixos_container): letters, digits and C(-) only, at most 11
        characters; C(_) is refused, as NixOS refuses it. V(default) is taken by the imports file."
    type: str
    required: true
  state:
    description:
      - V(present) the file exists with this definition and is imported.
      - V(absent) the file and its import are removed. After the next C(nixos-rebuild switch) NixOS
        stops the container but keeps its root directory C(/var/lib/nixos-containers/NAME).
      - Files of this directory the module did not write (their first line says so) are never
        changed or removed; the module fails rather than overwrite one.
    type: str
    choices: [absent, present]
    default: present
  directory:
    description:
      - The directory of the container files and of the imports file C(default.nix). Created when missing.
    type: path
    default: /etc/nixos/containers
  config:
    description:
      - "The body of the guest's NixOS module (C(containers.NAME.config)), as for
        M(nixfleet.containers.nixos_container), for example C(services.nginx.enable = true;). It is
        spliced verbatim into C({ config, lib, pkgs, ... }: { ... })."
      - Text that does not parse, or that closes those braces, is refused (when C(nix-instantiate) is on the host).
      - Mutually exclusive with O(config_file).
    type: str
  config_file:
    description:
      - Absolute path of a NixOS module on the host, imported by the guest configuration.
      - NixOS reads it at each rebuild, so a change of its content is picked up by the next
        C(nixos-rebuild switch) without this module reporting a change.
    type: path
  settings:
    description:
      - "Guest NixOS options as data, rendered to Nix with correct escaping and appended to O(config),
        as for M(nixfleet.containers.nixos_container). For example C({services: {nginx: {enable: true}}})."
      - "A path is written as C({_nix_path: /abs/path}), a package as C({_nix_package: hello})."
    type: dict
  auto_start:
    description:
      - C(autoStart). V(true) starts the container at boot and at the C(nixos-rebuild switch) that
        defines it, and restarts it when its definition changes (unless O(restart_if_changed=false)).
      - Not given, the option is not written (NixOS's default, V(false)).
    type: bool
  restart_if_changed:
    description:
      - C(restartIfChanged). V(false) keeps an O(auto_start) container running through a
        C(nixos-rebuild switch) that changed it; it runs the new system from its next start.
      - Not given, the option is not written (NixOS's default, V(true)). Without O(auto_start) a switch never restarts the container.
    type: bool
  private_network:
    description:
      - C(privateNetwork). Always written, defaulting to V(true) as M(nixfleet.containers.nixos_container)
        does (NixOS's own default is V(false)).
      - V(false) shares the host's network; the address, bridge, port and MAC options are then refused.
    type: bool
    default: true
  host_address:
    description:
      - C(hostAddress), the IPv4 address (optionally with C(/prefix)) of the host side C(ve-NAME).
      - "Unlike M(nixfleet.containers.nixos_container), no free pair is chosen for you: a definition in
        the host configuration must name its addresses. Without any address or bridge, the container has
        only loopback."
    type: str
  local_address:
    description: C(localAddress), the IPv4 address (optionally with C(/prefix)) of the container's C(eth0). Given together with O(host_address).
    type: str
  host_address6:
    description: C(hostAddress6), the IPv6 address (optionally with C(/prefix)) of the host side.
    type: str
  local_address6:
    description: C(localAddress6), the IPv6 address (optionally with C(/prefix)) of the container's C(eth0).
    type: str
  local_mac_address:
    description: C(localMacAddress), the MAC address of the container's C(eth0) (NixOS 26.05 and newer have the option).
    type: str
  host_bridge:
    description: C(hostBridge). Put the host side on this bridge (it becomes C(vb-NAME)).
    type: str
  forward_ports:
    description:
      - C(forwardPorts), ports forwarded from the host to the container by systemd-nspawn.
    type: list
    elements: dict
    suboptions:
      protocol:
        description: Protocol.
        type: str
        choices: [tcp, udp]
        default: tcp
      host_port:
        description: Port on the host.
        type: int
        required: true
      container_port:
        description: Port in the container; defaults to O(forward_ports[].host_port).
        type: int
  bind_mounts:
    description:
      - C(bindMounts), host paths mounted into the container, keyed by mount point (NixOS passes them to
        systemd-nspawn sorted by mount point).
      - Paths cannot contain white space (the unit splits the flags on it).
    type: list
    elements: dict
    suboptions:
      mount_point:
        description: Path in the container.
        type: str
        required: true
      host_path:
        description: Path on the host; defaults to O(bind_mounts[].mount_point).
        type: str
      read_only:
        description: Mount read-only (C(isReadOnly)).
        type: bool
        default: true
  ephemeral:
    description: C(ephemeral). Run the container on a throw-away root under C(/run/nixos-containers).
    type: bool
  tmpfs:
    description: C(tmpfs), paths in the container mounted as tmpfs.
    type: list
    elements: str
  enable_tun:
    description: C(enableTun). Give the container C(CAP_NET_ADMIN) and access to C(/dev/net/tun).
    type: bool
  additional_capabilities:
    description: C(additionalCapabilities), for example C(CAP_SYS_ADMIN).
    type: list
    elements: str
  extra_flags:
    description: C(extraFlags), extra systemd-nspawn flags.
    type: list
    elements: str
  private_users:
    description: C(privateUsers) - C(no), C(identity), C(pick) or a UID base.
    type: str
requirements:
  - A NixOS host whose C(configuration.nix) imports O(directory).
  - C(nix-instantiate) on the host to check the Nix syntax before any change (present on every NixOS host).
notes:
  - The module never runs C(nixos-rebuild); notify a handler that does (see the examples).
  - "Pick M(nixfleet.containers.nixos_container) (imperative) for containers that change on their own
    schedule: each is updated, restarted and rolled back alone, and a host update leaves it running.
    Pick this module when the container must be part of the host's configuration: built and
    booted with the host, every option NixOS has (also the unit-level ones), one rebuild for host and
    containers."
  - M(nixfleet.containers.nixos_container) and M(nixfleet.containers.nixos_containers) report a
    declarative container but never change or destroy it, as C(nixos-container) refuses to.
seealso:
  - module: nixfleet.containers.nixos_container
  - module: nixfleet.containers.nixos_container_info
'''

EXAMPLES = r'''
# configuration.nix has, once:  imports = [ ./containers ];
- name: A declarative web container, applied by the handler below
  nixfleet.containers.nixos_container_declarative:
    name: web
    auto_start: true
    host_address: 10.233.7.1
    local_address: 10.233.7.2
    forward_ports:
      - host_port: 8080
        container_port: 80
    settings:
      services:
        nginx:
          enable: true
      system:
        stateVersion: "25.11"
  notify: Rebuild the host

- name: Remove a declarative container (the next rebuild stops it; its root directory stays)
  nixfleet.containers.nixos_container_declarative:
    name: old
    state: absent
  notify: Rebuild the host

# In the play's (or role's) handlers:
#   - name: Rebuild the host
#     ansible.builtin.command:
#       argv: [nixos-rebuild, switch]
#     changed_when: true
'''

RETURN = r'''
path:
  description: The container file.
  returned: always
  type: str
  sample: /etc/nixos/containers/web.nix
imports_file:
  description: The imports file.
  returned: always
  type: str
  sample: /etc/nixos/containers/default.nix
imports:
  description: The containers the imports file lists after the run.
  returned: success
  type: list
  elements: str
  sample: ["api", "web"]
content:
  description: The container file's text after the run (empty with O(state=absent)).
  returned: success
  type: str
  sample: "# Managed by nixfleet.containers.nixos_container_declarative: container web.\n..."
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.nixfleet.containers.plugins.module_utils._declarative import (
    DeclarativeManager,
    declarative_argument_spec,
    MUTUALLY_EXCLUSIVE,
)


def main():
    module = AnsibleModule(
        argument_spec=declarative_argument_spec(),
        mutually_exclusive=MUTUALLY_EXCLUSIVE,
        required_together=[('host_address', 'local_address')],
        supports_check_mode=True,
    )
    manager = DeclarativeManager(module)
    try:
        result = manager.run()
    except (ValueError, OSError) as e:
        module.fail_json(msg=str(e), **manager.result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
