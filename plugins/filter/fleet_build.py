# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``container_fleet`` role's build phase (issue 14): every system of the rollout is built
before the first batch activates anything, and a system that fails to build stops the rollout.

- ``fleet_built``: the schedule after every host's build -> stopped before any change when a
  system failed to build (naming the containers and Nix's message);
- ``fleet_build_outcomes``: one host's build result -> the outcome of each container whose system
  failed to build (failed, nothing to roll back).

Documented in the ``fleet_*.yml`` files beside this one.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from collections.abc import Mapping

from ansible_collections.nixfleet.containers.plugins.filter.fleet_batches import _host_vars, _plain

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


class FilterModule(object):

    def filters(self):
        return {
            'fleet_built': fleet_built,
            'fleet_build_outcomes': fleet_build_outcomes,
        }
