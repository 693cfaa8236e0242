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
  - The host is read once (one listing of the conf directory, one C(systemctl list-units) and one
    C(systemctl show) for every container unit systemd has loaded, one look at the live addresses and routes). Every container is planned
    before anything changes; bad input in any of them fails the call with nothing changed.
  - Addresses left unset are allocated in one pass that avoids the conf files, the live links
    and routes, the explicit addresses of every declared container and the pairs just given to
    the containers before it in the list.
  - The plans are applied in order (removals first, then O(containers) in list order). A
    container whose commands fail does not stop the others; the module then fails with a
    message naming the failed containers, and still returns every container's result.
  - A no-op run of many containers costs about as much as one M(nixfleet.containers.nixos_container) call.
  - With O(build=per_system) (the default) each distinct guest system of the call is built once,
    before any container changes, and every container that uses it is created with
    C(nixos-container create --system-path) or set to it as C(update) would; see O(build).
author:
  - nixfleet.containers developers (@nixfleet)
extends_documentation_fragment:
  - nixfleet.containers._attributes
  - nixfleet.containers._nixos
  - nixfleet.containers._container_options.set
attributes:
  check_mode:
    support: full
    details:
      - Returns every container's plan (and with O(exclusive=true) the containers that would be removed).
  diff_mode:
    support: full
    details:
      - For each container that would change, the conf file, its C(configuration.nix) and the run state before and after.
      - With O(prune_systems), the shared system profiles removed (would be removed, in check mode).
      - In check mode the line C(NIXFLEET_SYSTEM) of the conf (the store path of the system a build makes) keeps its old
        value, or is left out for a new container, because it is known only after the build; the diff of the real run shows it.
  idempotent:
    support: partial
    details:
      - Containers with O(containers[].restart=true), O(containers[].recreate=true) or
        O(containers[].rollback=true) act on every run.
options:
  containers:
    description:
      - The declared containers of the host. Each element takes the options of
        M(nixfleet.containers.nixos_container), documented below.
      - Names must be unique in the list.
    type: list
    elements: dict
    required: true
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
  build:
    description:
      - How the guest systems of containers given by O(containers[].config), O(containers[].settings)
        or O(containers[].config_file) are built.
      - V(per_system) evaluates and builds each distinct system once (the same configuration text,
        the same O(containers[].nixos_path) or the host's C(<nixpkgs/nixos>), the same content of a
        config_file), the way C(nixos-container) builds (C(nix-env -p PROFILE -I nixos-config=FILE
        -f <nixpkgs/nixos> --set -A system)), into a profile of its own under
        C(/nix/var/nix/profiles/nixfleet-systems) (a garbage collector root) from a configuration kept
        in C(/var/lib/nixfleet/systems). Every system is built before the first container changes; when
        one fails to build, the containers that use it fail with Nix's message and nothing changes.
        The containers get it with C(nixos-container create --system-path) or C(nix-env --set) on
        their profile (and a reload when running, as C(update) does); each still gets its own
        C(configuration.nix) as C(nixos-container) writes it, so later updates, drift and rollback see it.
      - The shared system is built with C(networking.hostName) left empty (a C(mkDefault)), so that it
        does not depend on the container's name; systemd-nspawn gives each guest its container name
        as host name. A configuration that reads C(config.networking.hostName) sees an empty name;
        set it in the configuration, or use V(per_container).
      - V(per_container) lets C(nixos-container create)/C(update) evaluate and build every container
        on its own (an C(update) evaluates twice on NixOS 25.11 and newer).
      - Flakes and O(containers[].system_path) are built (or given) per container either way.
    type: str
    choices: [per_system, per_container]
    default: per_system
  build_only:
    description:
      - Plan every container and build the distinct systems of those that change (O(build=per_system)),
        but change no container. Every container is returned with C(deferred=true), and the systems
        in RV(systems), to be given to later calls in O(systems). For rollouts that build everything
        before the first batch activates anything.
    type: bool
    default: false
  systems:
    description:
      - Systems built before this call (RV(systems) of a O(build_only=true) call), by key. A container
        whose system has a key here, with that store path on the host, is not built again.
    type: dict
    default: {}
  prune_systems:
    description:
      - After the changes, remove the shared systems of O(build=per_system) that no container of the
        host uses any more, so that the garbage collector can free them (their profile under
        C(/nix/var/nix/profiles/nixfleet-systems) is a garbage collector root, and nothing else removes it).
      - A system is used when a link under C(/nix/var/nix/profiles/per-container) points at it (the
        current system or any generation of a container's profile, so a rolled-back container's systems
        stay), read from the links after the changes. A destroyed container's profile is gone, so its
        systems no longer count; a generation deleted with C(nix-collect-garbage -d) no longer counts.
      - A shared profile is removed (its links and its configuration in C(/var/lib/nixfleet/systems))
        when none of its generations is used and no run touched it for O(prune_systems_grace) seconds;
        a profile still used loses only its unused older generations. The systems this call builds or is
        given in O(systems), and each container's system from before the call (after a recreate, a rollback
        sets it again by O(containers[].system_path)), are always kept, whatever their age.
      - Store paths are never deleted here; C(nix-collect-garbage) frees them once nothing roots them.
        A later container with a pruned configuration builds it again.
      - Not with O(build_only=true). In check mode the profiles that would be removed are returned
        (from the links as they are before the changes) and nothing is removed.
    type: bool
    default: true
  prune_systems_grace:
    description:
      - Seconds after a run last touched a shared system (built it, or set it in its profile) during
        which O(prune_systems) keeps it although no container uses it, so that a concurrent run's
        fresh build survives until its batches set it. V(0) prunes every unused system at once.
      - Must not be negative.
    type: int
    default: 86400
  brief:
    description:
      - Return a short entry for each container that needs no change (and did not fail), with only
        RV(containers.action), RV(containers.reasons), RV(containers.changed), RV(containers.failed)
        and RV(containers.deferred) (no plan steps, no facts, no commands).
      - Containers that change, fail or are removed keep their full entry, and RV(summary) is
        complete either way.
      - For large plans whose unchanged containers need no details, such as the plan of the
        P(nixfleet.containers.container_fleet#role) role, which sets it; a no-op plan of 50
        containers returns about 6 KB instead of about 120 KB.
    type: bool
    default: false
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
      returned: unless O(brief=true) and the container needs no change
    changed:
      description: Whether this container changed (would change, in check mode).
      type: bool
    failed:
      description: Whether a command failed for this container.
      type: bool
    deferred:
      description: Planned but not applied, because it is not in O(only), because of O(build_only), or
        because a system of the call failed to build.
      type: bool
    msg:
      description: What failed, or why a changed container was not applied.
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
      returned: when the container existed (with O(brief=true), only when it changes)
    generation_after:
      description: Profile generation after the run.
      type: int
      returned: when the container was changed and exists after the run
    actions:
      description: The commands that ran for this container.
      type: list
      elements: list
      returned: unless O(brief=true) and the container needs no change
    container:
      description: Facts about the container after the run (before it, in check mode or when deferred),
        as M(nixfleet.containers.nixos_container) returns them; empty when it does not exist.
      type: dict
      returned: unless O(brief=true) and the container needs no change
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
      description: Containers planned but not applied (not in O(only), O(build_only), or a failed build).
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
systems:
  description:
    - The distinct systems this call built or used (O(build=per_system)), by key (a digest of the
      configuration text, the nixpkgs and a config_file's content), as store paths.
  returned: always
  type: dict
  sample: {"3f1c0e5b7a9d2c4e6f8a0b1c2d3e4f5a": "/nix/store/0c5x...-nixos-system-unnamed-25.11"}
pruned_systems:
  description:
    - The shared systems O(prune_systems) removed (would remove, in check mode), by key, with the
      store paths their profile no longer roots. A removed key's profile and configuration are gone.
  returned: always
  type: dict
  sample: {"3f1c0e5b7a9d2c4e6f8a0b1c2d3e4f5a": ["/nix/store/0c5x...-nixos-system-unnamed-25.11"]}
actions:
  description: Every command that ran (argv lists), in order (the builds first); empty in check mode.
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
from ansible_collections.nixfleet.containers.plugins.module_utils._host import run_module

# What a container that needs no change keeps with brief=true (the container_fleet role's filters
# read no more of it).
BRIEF_KEYS = ('action', 'reasons', 'changed', 'failed', 'deferred')


def argument_spec():
    spec = containers_argument_spec()
    spec['brief'] = dict(type='bool', default=False)
    return spec


def brief(result):
    """RESULT with the entries of the containers that need no change cut to BRIEF_KEYS."""
    for name, entry in result['containers'].items():
        if entry['action'] == 'noop' and not entry['failed']:
            result['containers'][name] = dict((k, entry[k]) for k in BRIEF_KEYS if k in entry)
    return result


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    containers = ContainerSet(module)

    def work():
        # A failure here is a read of the host or bad input: each apply failure is per container.
        result = containers.run()
        if result['summary']['failed']:
            result.update(failed=True, msg=failure_message(result))
        if module.params['brief']:
            result = brief(result)
        return result

    run_module(module, work, partial=lambda: dict(changed=False))


if __name__ == '__main__':
    main()
