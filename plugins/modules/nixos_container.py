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
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details:
      - The diff shows the conf file, the container's C(configuration.nix) and the run state before and after.
  idempotent:
    support: partial
    details:
      - O(restart=true), O(recreate=true) and O(rollback=true) act on every run.
options:
  name:
    description:
      - Name of the container.
      - "Letters, digits and C(-) only, at most 11 characters: the host side of the container's
        network is the interface C(ve-NAME), which must fit the kernel's 15-byte interface names.
        C(_) is refused because systemd-machined and declarative NixOS containers refuse it."
    type: str
    required: true
  state:
    description:
      - V(started) the container exists and runs.
      - V(present) the container exists; whether it runs is left as it is (a new container is not started).
      - V(stopped) the container exists and does not run.
      - V(absent) the container is stopped and destroyed (conf, root directory, profile and GC roots).
    type: str
    choices: [absent, present, started, stopped]
    default: started
  restart:
    description:
      - Stop and start the container even when nothing changed. Only with O(state=started).
    type: bool
    default: false
  recreate:
    description:
      - Destroy and create the container again, even when nothing changed. Its root directory is lost.
      - Its addresses are kept, because the module passes them explicitly.
      - Without O(config), O(settings), O(config_file), O(flake) or O(system_path) the guest is
        rebuilt from the configuration it has now (its C(configuration.nix), its flake, or else its
        current system).
      - Mutually exclusive with O(rollback) (a recreated container has a new profile).
    type: bool
    default: false
  rollback:
    description:
      - Switch the container's profile to the previous generation and activate it (reload when
        running, or stop and start when the conf file changes too).
      - The next run without O(rollback) applies the declared configuration again.
      - With O(config) or O(settings) (the configuration of the generation rolled back to), its
        C(configuration.nix) is written too, without a build.
      - Refused when there is no earlier generation, and together with O(recreate).
    type: bool
    default: false
  rebuild:
    description:
      - Rebuild the guest system even when the configuration text did not change (for example when
        a flake's inputs or an imported file changed). The result reports C(changed) only when the
        build gave a different system.
    type: bool
    default: false
  config:
    description:
      - The body of the guest's NixOS module, as C(nixos-container --config) takes it, for example
        C(services.nginx.enable = true;).
      - Mutually exclusive with O(config_file), O(flake) and O(system_path).
    type: str
  config_file:
    description:
      - Absolute path of a NixOS module on the host, imported by the guest configuration (C(--config-file)).
      - The file's content is fingerprinted, so a changed file rebuilds the guest.
    type: path
  flake:
    description:
      - A flake reference with an optional attribute, C(REF#ATTR); the system is
        C(REF#nixosConfigurations.ATTR) (ATTR defaults to C(container)).
      - Unlike C(nixos-container update), which forgets the attribute, the module remembers it in the conf file.
    type: str
  system_path:
    description:
      - A prebuilt system closure in the Nix store (C(--system-path)). A new path is set in the
        container's profile with C(nix-env --set) and activated.
    type: path
  settings:
    description:
      - "Guest NixOS options as data, rendered to Nix by the collection with correct escaping and
        appended to O(config). For example C({services: {nginx: {enable: true}}})."
      - Settings are written as dotted attribute paths next to the template's own
        C(networking.hostName) and C(networking.useDHCP); setting those two again is a Nix error.
      - "A path is written as a one-key dict C({_nix_path: /abs/path}), a package as
        C({_nix_package: hello}) (C(pkgs.hello)). Strings are always Nix strings: a string can
        never inject Nix code."
    type: dict
  nixos_path:
    description:
      - The file C(nix-env -f) evaluates the configuration with (C(--nixos-path)); default C(<nixpkgs/nixos>).
    type: path
  auto_start:
    description:
      - Start the container at boot, as a declarative container with C(autoStart = true) is.
      - V(true) links C(machines.target.wants/container@NAME.service) in O(systemd_unit_dir) (as
        C(systemctl enable) and extra-container do) and records C(AUTO_START=1); V(false) removes the link
        and records C(AUTO_START=0). C(AUTO_START) alone is read by nothing on a current host.
      - The link is read at boot; changing it never restarts the container.
      - Omitted, an existing container's link is left as it is.
    type: bool
  private_network:
    description:
      - Give the container its own network namespace with a veth pair (C(PRIVATE_NETWORK=1)).
      - V(false) shares the host's network; the address, bridge, port and MAC options are then ignored.
    type: bool
    default: true
  host_address:
    description:
      - IPv4 address (optionally with C(/prefix)) of the host side C(ve-NAME).
      - With O(local_address) not given either, a free pair C(10.233.N.1)/C(10.233.N.2) is chosen
        (avoiding every address in any conf file, with or without prefix, and addresses on live
        interfaces) and written explicitly, so the container keeps it across O(recreate).
    type: str
  local_address:
    description:
      - IPv4 address (optionally with C(/prefix)) of the container's C(eth0). Given together with O(host_address),
        or alone with O(host_bridge) (then with the bridge's prefix, like C(10.0.0.5/24)).
    type: str
  host_address6:
    description: IPv6 address (optionally with C(/prefix)) of the host side.
    type: str
  local_address6:
    description: IPv6 address (optionally with C(/prefix)) of the container's C(eth0).
    type: str
  local_mac_address:
    description: MAC address of the container's C(eth0) (NixOS 26.05 and newer read it).
    type: str
  host_bridge:
    description:
      - Put the host side on this bridge (it becomes C(vb-NAME)); the host then configures no address.
    type: str
  forward_ports:
    description:
      - Ports forwarded from the host to the container by systemd-nspawn (C(HOST_PORT)).
      - Reaching such a port from another machine needs IP forwarding on the host
        (C(net.ipv4.ip_forward), for example M(nixfleet.containers.nixos_container_nat) with its
        default O(nixfleet.containers.nixos_container_nat#module:ip_forward=true)); from the host itself it works without.
      - A host port belongs to one container of the host; another container's port is refused.
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
      - Host paths mounted into the container (C(--bind)/C(--bind-ro) in C(EXTRA_NSPAWN_FLAGS)).
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
        description: Mount read-only.
        type: bool
        default: true
  ephemeral:
    description: Run the container on a throw-away copy of its root (C(--ephemeral)).
    type: bool
  tmpfs:
    description: Paths in the container mounted as tmpfs (C(--tmpfs=)).
    type: list
    elements: str
  enable_tun:
    description:
      - Give the container C(CAP_NET_ADMIN) for TUN devices. The unit's C(DeviceAllow) for
        C(/dev/net/tun) cannot be set from a conf file.
    type: bool
  additional_capabilities:
    description: Extra capabilities (C(--capability=)), for example C(CAP_SYS_ADMIN).
    type: list
    elements: str
  extra_flags:
    description: Extra systemd-nspawn flags, appended last to C(EXTRA_NSPAWN_FLAGS).
    type: list
    elements: str
  private_users:
    description: User namespacing (C(PRIVATE_USERS)) - C(no), C(identity), C(pick) or a UID base.
    type: str
  start_timeout:
    description:
      - Seconds to wait for C(nixos-container start) (the guest reaching its default target) before failing.
    type: int
    default: 120
  systemd_unit_dir:
    description:
      - The mutable systemd unit directory that gets the boot wants-link (O(auto_start)) and the drop-in
        for the unit properties (C(container@NAME.service.d/50-nixfleet.conf)).
      - On NixOS C(/etc/systemd/system) is a read-only link into the store, so the default is
        C(/etc/systemd-mutable/system), the directory extra-container uses. systemd reads it only when the host
        configuration sets C(boot.extraSystemdUnitPaths = [ "/etc/systemd-mutable/system" ]).
    type: path
    default: /etc/systemd-mutable/system
  cpu_quota:
    description:
      - C(CPUQuota=) of C(container@NAME.service), for example V(50%) (half of one CPU).
      - The imperative containers share the template unit and their conf cannot carry unit properties;
        C(systemd-nspawn --property=) is ignored with C(--keep-unit), which the unit uses. So the limits go
        into a drop-in for C(container@NAME.service) in O(systemd_unit_dir), and systemd applies them to the
        unit's cgroup, where the container runs.
      - A change is a planned restart of a running container (the plan names it).
      - Giving any of O(cpu_quota), O(memory_max), O(tasks_max), O(unit_properties) makes the drop-in hold
        exactly those; omitting all four leaves the drop-in as it is; O(unit_properties={}) alone removes it.
    type: str
  memory_max:
    description:
      - C(MemoryMax=) of C(container@NAME.service), for example V(1G), a percentage or V(infinity).
      - Written and applied as O(cpu_quota) is.
    type: str
  tasks_max:
    description:
      - C(TasksMax=) of C(container@NAME.service) (a number, a percentage or V(infinity)).
      - Written and applied as O(cpu_quota) is.
    type: str
  unit_properties:
    description:
      - Further C([Service]) properties of C(container@NAME.service), for example C(MemoryHigh) or C(CPUWeight),
        written to the same drop-in as O(cpu_quota) (a name may not repeat one set by its own option).
    type: dict
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
      description: Host-side IPv4 address.
      type: str
    local_address:
      description: Container IPv4 address.
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

from ansible_collections.nixfleet.containers.plugins.module_utils._cli import CliError
from ansible_collections.nixfleet.containers.plugins.module_utils._container import (
    ContainerManager,
    container_argument_spec,
    CONTAINER_MUTUALLY_EXCLUSIVE,
)


def main():
    module = AnsibleModule(
        argument_spec=container_argument_spec(),
        mutually_exclusive=CONTAINER_MUTUALLY_EXCLUSIVE,
        supports_check_mode=True,
    )
    manager = ContainerManager(module)
    try:
        result = manager.run()
    except CliError as e:
        failure = e.as_dict()
        failure.update(manager.partial_result())
        module.fail_json(**failure)
    except ValueError as e:
        module.fail_json(msg=str(e), **manager.partial_result())
    module.exit_json(**result)


if __name__ == '__main__':
    main()
