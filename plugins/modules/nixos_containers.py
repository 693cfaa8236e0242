#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: nixos_containers
short_description: Manage the declared set of NixOS containers of one host in one call
version_added: 0.1.0
description:
  - Brings every container of O(containers) to its declared state on one NixOS host in ONE
    module call, with the same planner, options and behaviour as
    M(nixfleet.containers.nixos_container) (the two modules share one implementation).
  - The host is read once (one listing of the conf directory, one C(systemctl show) for every
    container unit, one look at the live addresses and routes). Every container is planned
    before anything changes; bad input in any of them fails the call with nothing changed.
  - Addresses left unset are allocated in one pass that avoids the conf files, the live links
    and routes, the explicit addresses of every declared container and the pairs just given to
    the containers before it in the list.
  - The plans are applied in order (removals first, then O(containers) in list order). A
    container whose commands fail does not stop the others; the module then fails with a
    message naming the failed containers, and still returns every container's result.
  - A no-op run of many containers costs about as much as one M(nixfleet.containers.nixos_container) call.
author:
  - nixfleet.containers developers (@nixfleet)
extends_documentation_fragment:
  - nixfleet.containers._attributes
  - nixfleet.containers._nixos
attributes:
  check_mode:
    support: full
    details:
      - Returns every container's plan (and with O(exclusive=true) the containers that would be removed).
  diff_mode:
    support: full
    details:
      - For each container that would change, the conf file, its C(configuration.nix) and the run state before and after.
  idempotent:
    support: partial
    details:
      - Containers with O(containers[].restart=true), O(containers[].recreate=true) or
        O(containers[].rollback=true) act on every run.
options:
  containers:
    description:
      - The declared containers of the host. Each element takes the options of
        M(nixfleet.containers.nixos_container) (see there for the details).
      - Names must be unique in the list.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Name of the container (letters, digits and C(-), at most 11 characters).
        type: str
        required: true
      state:
        description: V(started), V(present), V(stopped) or V(absent), as in M(nixfleet.containers.nixos_container).
        type: str
        choices: [absent, present, started, stopped]
        default: started
      restart:
        description: Stop and start the container even when nothing changed.
        type: bool
        default: false
      recreate:
        description: Destroy and create the container again (its addresses are kept).
        type: bool
        default: false
      rollback:
        description: Switch the container's profile to the previous generation and activate it.
        type: bool
        default: false
      rebuild:
        description: Rebuild the guest system even when the configuration text did not change.
        type: bool
        default: false
      config:
        description: The body of the guest's NixOS module (C(--config)).
        type: str
      config_file:
        description: Absolute path of a NixOS module on the host, imported by the guest configuration.
        type: path
      flake:
        description: A flake reference C(REF#ATTR); the attribute is remembered in the conf file.
        type: str
      system_path:
        description: A prebuilt system closure in the Nix store.
        type: path
      settings:
        description: Guest NixOS options as data, rendered to Nix by the collection (injection-proof).
        type: dict
      nixos_path:
        description: The file C(nix-env -f) evaluates the configuration with (C(--nixos-path)).
        type: path
      auto_start:
        description:
          - Start the container at boot (a C(machines.target) wants-link in O(containers[].systemd_unit_dir),
            plus C(AUTO_START) in the conf); see M(nixfleet.containers.nixos_container).
        type: bool
      private_network:
        description: Give the container its own network namespace with a veth pair.
        type: bool
        default: true
      host_address:
        description: IPv4 address of the host side C(ve-NAME); allocated when neither address is given.
        type: str
      local_address:
        description: IPv4 address of the container's C(eth0).
        type: str
      host_address6:
        description: IPv6 address of the host side.
        type: str
      local_address6:
        description: IPv6 address of the container's C(eth0).
        type: str
      local_mac_address:
        description: MAC address of the container's C(eth0).
        type: str
      host_bridge:
        description: Put the host side on this bridge.
        type: str
      forward_ports:
        description:
          - Ports forwarded from the host to the container (C(HOST_PORT)).
          - Reaching such a port from another machine needs IP forwarding on the host (C(net.ipv4.ip_forward),
            for example M(nixfleet.containers.nixos_container_nat)).
          - A host port belongs to one container of the host; a port of another container (also one in this
            list) is refused before any change.
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
            description: Port in the container; defaults to the host port.
            type: int
      bind_mounts:
        description: Host paths mounted into the container.
        type: list
        elements: dict
        suboptions:
          mount_point:
            description: Path in the container.
            type: str
            required: true
          host_path:
            description: Path on the host; defaults to the mount point.
            type: str
          read_only:
            description: Mount read-only.
            type: bool
            default: true
      ephemeral:
        description: Run the container on a throw-away copy of its root.
        type: bool
      tmpfs:
        description: Paths in the container mounted as tmpfs.
        type: list
        elements: str
      enable_tun:
        description: Give the container C(CAP_NET_ADMIN) for TUN devices.
        type: bool
      additional_capabilities:
        description: Extra capabilities, for example C(CAP_SYS_ADMIN).
        type: list
        elements: str
      extra_flags:
        description: Extra systemd-nspawn flags.
        type: list
        elements: str
      private_users:
        description: User namespacing (C(PRIVATE_USERS)).
        type: str
      start_timeout:
        description: Seconds to wait for the container to start before failing.
        type: int
        default: 120
      systemd_unit_dir:
        description: Mutable unit directory for the boot link and the unit drop-in (needs C(boot.extraSystemdUnitPaths)).
        type: path
        default: /etc/systemd-mutable/system
      cpu_quota:
        description: C(CPUQuota=) of C(container@NAME.service) (a drop-in; a change restarts the container).
        type: str
      memory_max:
        description: C(MemoryMax=) of C(container@NAME.service).
        type: str
      tasks_max:
        description: C(TasksMax=) of C(container@NAME.service).
        type: str
      unit_properties:
        description: Further C([Service]) properties of C(container@NAME.service), in the same drop-in.
        type: dict
  exclusive:
    description:
      - Destroy the imperative containers of the host that are not in O(containers).
      - Declarative containers (defined in the host's C(configuration.nix)) are never removed;
        they are listed in RV(summary.declarative_kept).
      - In check mode the containers that would be removed are returned with the action V(destroy).
    type: bool
    default: false
  only:
    description:
      - Plan every container, but apply only the containers named here (the others are
        returned with their plan and C(deferred=true)). For rollouts in batches.
      - Each name must be in O(containers) or be a container O(exclusive) removes.
    type: list
    elements: str
'''

EXAMPLES = r'''
- name: The web tier of this host, and nothing else
  nixfleet.containers.nixos_containers:
    exclusive: true
    containers:
      - name: web1
        settings:
          services:
            nginx:
              enable: true
      - name: web2
        settings:
          services:
            nginx:
              enable: true
        forward_ports:
          - host_port: 8080
            container_port: 80
      - name: batch
        state: stopped
        config: |
          services.openssh.enable = true;
  register: fleet

- name: Show what changed
  ansible.builtin.debug:
    var: fleet.summary

- name: Plan everything, apply only the canary
  nixfleet.containers.nixos_containers:
    containers: "{{ host_containers }}"
    only: [web1]
'''

RETURN = r'''
containers:
  description:
    - One entry per container (removals first, then the declared containers in list order),
      keyed by name.
  returned: always
  type: dict
  sample:
    web1:
      action: reload
      reasons: ["the guest configuration changed"]
      plan: {"action": "reload", "steps": ["update"], "reasons": ["the guest configuration changed"]}
      changed: true
      failed: false
      deferred: false
      generation_before: 1
      generation_after: 2
      actions: [["/run/current-system/sw/bin/nixos-container", "update", "web1", "--config", "..."]]
      container: {"name": "web1", "state": "up", "local_address": "10.233.1.2", "generation": 2}
  contains:
    action:
      description: The planned action (V(noop), V(create), V(reload), V(restart), V(recreate),
        V(rollback), V(start), V(stop), V(configure), V(destroy)).
      type: str
    reasons:
      description: Why, in words.
      type: list
      elements: str
    plan:
      description: The action, its ordered steps and reasons.
      type: dict
    changed:
      description: Whether this container changed (would change, in check mode).
      type: bool
    failed:
      description: Whether a command failed for this container.
      type: bool
    deferred:
      description: Planned but not applied, because it is not in O(only).
      type: bool
    msg:
      description: What failed.
      type: str
      returned: when failed
    cmd:
      description: The command that failed (argv).
      type: list
      elements: str
      returned: when a command failed
    rc:
      description: Its exit status.
      type: int
      returned: when a command failed
    stdout:
      description: Its standard output.
      type: str
      returned: when a command failed
    stderr:
      description: Its standard error.
      type: str
      returned: when a command failed
    generation_before:
      description: Profile generation before the run.
      type: int
      returned: when the container existed
    generation_after:
      description: Profile generation after the run.
      type: int
      returned: when the container was changed and exists after the run
    actions:
      description: The commands that ran for this container.
      type: list
      elements: list
    container:
      description: Facts about the container after the run (before it, in check mode or when deferred),
        as M(nixfleet.containers.nixos_container) returns them; empty when it does not exist.
      type: dict
    diff:
      description: This container's diff (conf file, C(configuration.nix), run state).
      type: list
      elements: dict
      returned: in diff mode
summary:
  description: Counts per planned action and the container names per outcome.
  returned: always
  type: dict
  sample: {"counts": {"noop": 48, "reload": 1, "destroy": 1}, "changed": ["web1", "old"], "unchanged": ["web2"],
           "failed": [], "deferred": [], "removed": ["old"], "declarative_kept": ["db"]}
  contains:
    counts:
      description: Number of containers per planned action.
      type: dict
    changed:
      description: Containers that changed (would change, in check mode).
      type: list
      elements: str
    unchanged:
      description: Containers already as declared.
      type: list
      elements: str
    failed:
      description: Containers whose commands failed.
      type: list
      elements: str
    deferred:
      description: Containers planned but not applied (not in O(only)).
      type: list
      elements: str
    removed:
      description: Containers destroyed (would be, in check mode) because of O(exclusive).
      type: list
      elements: str
    declarative_kept:
      description: Declarative containers of the host that are not in O(containers) (never removed).
      type: list
      elements: str
actions:
  description: Every command that ran (argv lists), in order; empty in check mode.
  returned: always
  type: list
  elements: list
  sample: [["/run/current-system/sw/bin/nixos-container", "destroy", "old"]]
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.nixfleet.containers.plugins.module_utils._containers import (
    ContainerSet,
    containers_argument_spec,
    failure_message,
)
from ansible_collections.nixfleet.containers.plugins.module_utils._cli import CliError


def main():
    module = AnsibleModule(argument_spec=containers_argument_spec(), supports_check_mode=True)
    containers = ContainerSet(module)
    try:
        result = containers.run()
    except CliError as e:
        # Only a read of the host can fail this way (every apply failure is per container).
        module.fail_json(**e.as_dict())
    except ValueError as e:
        module.fail_json(msg=str(e), changed=False)
    if result['summary']['failed']:
        module.fail_json(msg=failure_message(result), **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
