# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``container_fleet`` role's build phase (issue 14): every system of the rollout is built
before the first batch activates anything, and a system that fails to build stops the rollout.

- ``fleet_built``: the schedule after every host's build -> stopped before any change when a
  system failed to build (naming the containers and Nix's message);
- ``fleet_build_outcomes``: one host's build result -> the outcome of each container whose system
  failed to build (failed, nothing to roll back);
- ``fleet_build_plan`` / ``fleet_build_host_result``: with a build host (container_fleet_build_host),
  the fleet's distinct systems (the same key as nixos_containers computes on a host), the hosts that
  need each, and each host's share of what the build host built, as a nixos_containers build result.

Documented in the ``fleet_*.yml`` files beside this one.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from collections.abc import Mapping

from ansible_collections.nixfleet.containers.plugins.filter.fleet_batches import _host_vars, _one_line, _plain, PLAN_FACT
from ansible_collections.nixfleet.containers.plugins.module_utils._build import (
    BUILDS_CONFIG_DIR,
    BUILDS_PROFILE_DIR,
    DEFAULT_NIXOS,
    guest_extra,
    nix_error,
    shared_configuration,
    system_key,
)

BUILT_FACT = 'container_fleet_built'


def build_failures(built):
    """[(name or None, message)] of one host's build result (None: the call itself failed)."""
    built = _plain(built) or {}
    if not built.get('failed') and not built.get('unreachable'):
        return []
    containers = built.get('containers') if isinstance(built.get('containers'), Mapping) else {}
    failed = [(name, entry.get('msg') or 'failed') for name, entry in sorted(containers.items())
              if isinstance(entry, Mapping) and entry.get('failed')]
    return failed or [(None, built.get('msg') or 'the build failed')]


def fleet_built(state, hostvars, reached):
    """STATE, stopped before any change when a host's build failed."""
    state = dict(_plain(state))
    if state.get('stopped'):
        return state
    problems = []
    for host in _plain(list(reached)):
        for name, message in build_failures(_host_vars(hostvars, host, BUILT_FACT)):
            problems.append('%s: %s' % ('%s/%s' % (host, name) if name else host, message))
    if problems:
        state.update(stopped=True, stopped_at=0,
                     reason='before any change: a system of the rollout failed to build: %s' % '; '.join(problems))
    return state


def fleet_build_outcomes(built, plan):
    """{name: outcome} of the containers of one host whose system failed to build."""
    planned = (_plain(plan) or {}).get('containers') or {}
    return dict((name, dict(outcome='failed', batch=None, action=(planned.get(name) or {}).get('action'), health=None,
                            message=message, rollback=False, undo=None))
                for name, message in build_failures(built) if name)


def fleet_build_plan(containers, hostvars, reached, build_host=None):
    """The distinct systems of the rollout's changes, to build once on the build host.

    CONTAINERS: every host's nixos_containers items (fleet_validate's); a container counts when its
    plan creates or updates it from config/settings (flakes, system_path and config_file, a file on
    its host, stay with the host). Returns dict(systems=[dict(key, text, nixos, profile, config_file,
    archive, containers=['host/name'])], hosts={host: [key]}), and error when BUILD_HOST is not a
    host of the inventory (Ansible would try to reach a host of that name).
    """
    containers = _plain(containers) or {}
    systems, hosts = {}, {}
    for host in _plain(list(reached)):
        planned = ((_host_vars(hostvars, host, PLAN_FACT) or {}).get('containers') or {})
        for spec in containers.get(host) or []:
            entry = planned.get(spec.get('name')) or {}
            steps = (entry.get('plan') or {}).get('steps') or []
            if not entry.get('changed') or not set(steps) & set(['create', 'update']):
                continue
            if not (spec.get('config') or spec.get('settings')) or spec.get('flake') or spec.get('system_path'):
                continue
            text = shared_configuration(guest_extra(spec.get('config'), spec.get('settings')))
            key = system_key(text, spec.get('nixos_path'))
            item = systems.setdefault(key, dict(
                key=key, text=text, nixos=spec.get('nixos_path') or DEFAULT_NIXOS, containers=[],
                profile='%s/%s' % (BUILDS_PROFILE_DIR, key), config_file='%s/%s.nix' % (BUILDS_CONFIG_DIR, key),
                archive='/tmp/nixfleet-system-%s.closure' % key))
            item['containers'].append('%s/%s' % (host, spec['name']))
            if key not in hosts.setdefault(host, []):
                hosts[host].append(key)
    result = dict(systems=list(systems.values()), hosts=hosts)
    if build_host and build_host not in hostvars:
        result['error'] = 'container_fleet_build_host: %r is not a host of the inventory' % str(build_host)
    return result


def fleet_build_host_result(plan, builds, host, build_host=None):
    """HOST's share of the build host's work as a nixos_containers build result: the systems it
    needs (by key), or failed with each of its containers whose system was not built (the build
    failed, the build host could not be reached, or the plan's error)."""
    plan, builds = _plain(plan) or {}, _plain(builds) or {}
    results = dict(((r.get('item') or {}).get('key'), r) for r in builds.get('results') or [])
    mine = set((plan.get('hosts') or {}).get(host) or [])
    systems, containers = {}, {}
    for item in plan.get('systems') or []:
        if item['key'] not in mine:
            continue
        result = results.get(item['key']) or {}
        path = _built_path(result)
        if path:
            systems[item['key']] = path
            continue
        message = _not_built(plan, result, build_host)
        for change in item['containers']:
            owner, name = change.split('/', 1)
            if owner == host:
                containers[name] = dict(failed=True, msg=message)
    if containers:
        return dict(failed=True, msg='the build host could not build: %s' % ', '.join(sorted(containers)),
                    containers=containers, systems={})
    return dict(failed=False, changed=False, systems=systems)


def _built_path(result):
    """The store path a build result printed last, or None when it did not build."""
    if result.get('failed') or result.get('unreachable') or result.get('skipped'):
        return None
    lines = (result.get('stdout') or '').strip().splitlines()
    return lines[-1] if lines else None


def _not_built(plan, result, build_host):
    if plan.get('error'):
        return '%s (nothing was changed)' % plan['error']
    if result.get('unreachable'):
        return 'the build host %s is unreachable (nothing was changed): %s' % (build_host, _one_line(result.get('msg') or ''))
    if not result or result.get('skipped'):
        return 'its system was not built on the build host (nothing was changed)'
    return 'its system failed to build on the build host (nothing was changed): %s' % nix_error(
        result.get('stderr'), result.get('stdout') or result.get('msg'))


class FilterModule(object):

    def filters(self):
        return {
            'fleet_built': fleet_built,
            'fleet_build_outcomes': fleet_build_outcomes,
            'fleet_build_plan': fleet_build_plan,
            'fleet_build_host_result': fleet_build_host_result,
        }
