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
    bind mounts by mount point). A few options go into the container's own unit instead of the conf;
    their descriptions say so.
  - "Why a module of its own and not a mode of M(nixfleet.containers.nixos_container): that module
    manages a live container (plan, build, start, reload, roll back, destroy) and its options mean
    I(what the container is now); this one writes a definition that takes effect at the next rebuild
    and nothing else, with no run state, no rollback and no destroy. Keeping them apart keeps each
    one's options and results simple."
  - "Unlike M(nixfleet.containers.nixos_container), options left unset do not keep a value: the file
    is the whole definition, rendered from this task's options alone, so an option dropped from the
    task is dropped from C(containers.NAME), and at the next C(nixos-rebuild switch) from the
    container (its addresses, forwarded ports, O(auto_start), ...). Give the whole definition on
    every run; C(--check --diff) shows the lines that would go."
  - Declarative containers are part of the host's system, so they follow the host. Every
    C(nixos-rebuild switch), including one run only to update the host, rebuilds them, and restarts
    those with O(auto_start) whenever their system or settings changed. See the collection's
    C(docs/declarative.md) for which kind to choose.
author:
  - nixfleet.containers developers (@nixfleet)
extends_documentation_fragment:
  - nixfleet.containers._attributes
  - nixfleet.containers._container_options.declarative
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details:
      - The diff shows the container file and the imports file before and after.
  idempotent:
    support: full
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

from ansible_collections.nixfleet.containers.plugins.module_utils._host import run_module
from ansible_collections.nixfleet.containers.plugins.module_utils._declarative import (
    DeclarativeManager,
    declarative_argument_spec,
    MUTUALLY_EXCLUSIVE,
)


def main():
    module = AnsibleModule(
        argument_spec=declarative_argument_spec(),
        mutually_exclusive=MUTUALLY_EXCLUSIVE,
        supports_check_mode=True,
    )
    manager = DeclarativeManager(module)
    run_module(module, manager.run, partial=lambda: manager.result)


if __name__ == '__main__':
    main()
