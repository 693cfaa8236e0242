# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The nixos_containers module's work: the declared set of containers of ONE host, in one call.

This module_util is PRIVATE to the collection: it may change without notice.

The host is read once (one conf directory listing, one ``systemctl list-units`` and one ``systemctl show``
for every loaded unit, one look at the live addresses); every container is planned with the same planner as
nixos_container (``_container.ContainerManager``) before anything changes, so bad input in
any of them fails the whole call with nothing done. The plans are then applied in order:
removals (``exclusive``) first, then the declared containers. A container whose commands fail
does not stop the others; the call fails at the end, naming the failed containers.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

from ansible_collections.nixfleet.containers.plugins.module_utils._build import build, Build
from ansible_collections.nixfleet.containers.plugins.module_utils._cli import CliError
from ansible_collections.nixfleet.containers.plugins.module_utils._container import (
    ContainerManager,
    container_argument_spec,
    public_facts,
    CONTAINER_MUTUALLY_EXCLUSIVE,
)
from ansible_collections.nixfleet.containers.plugins.module_utils._host import HostState
from ansible_collections.nixfleet.containers.plugins.module_utils._names import container_name_error
from ansible_collections.nixfleet.containers.plugins.module_utils._prune import DEFAULT_GRACE, Pruner

# The element options of ``containers``: nixos_container's options, but the binary is per host.
HOST_LEVEL_OPTIONS = ('nixos_container_bin',)
REMOVAL_REASON = 'exclusive=true and the container is not in the declared list'
# What every per-container result carries (the rest of ContainerManager.result stays inside).
RESULT_KEYS = ('action', 'reasons', 'plan', 'changed', 'failed', 'msg', 'deferred',
               'generation_before', 'generation_after', 'container', 'actions', 'diff',
               'cmd', 'rc', 'stdout', 'stderr')


def element_argument_spec():
    """The ``containers`` element spec: nixos_container's options minus the host-level ones."""
    spec = container_argument_spec()
    for key in HOST_LEVEL_OPTIONS:
        spec.pop(key)
    return spec


def containers_argument_spec():
    return dict(
        containers=dict(type='list', elements='dict', required=True, options=element_argument_spec(),
                        mutually_exclusive=CONTAINER_MUTUALLY_EXCLUSIVE),
        exclusive=dict(type='bool', default=False),
        only=dict(type='list', elements='str'),
        nixos_container_bin=dict(type='path'),
        build=dict(type='str', default='per_system', choices=['per_system', 'per_container']),
        build_only=dict(type='bool', default=False),
        systems=dict(type='dict', default={}),
        prune_systems=dict(type='bool', default=True),
        prune_systems_grace=dict(type='int', default=DEFAULT_GRACE),
    )


def default_params(name, **overrides):
    """A full parameter dict for one container, as AnsibleModule fills in the defaults."""
    params = dict((key, value.get('default')) for key, value in container_argument_spec().items())
    params.update(name=name, **overrides)
    return params


def input_errors(containers, only):
    """Errors in the list itself, found before the host is looked at."""
    errors = []
    seen = {}
    for index, spec in enumerate(containers):
        name = spec.get('name')
        error = container_name_error(name)
        if error:
            errors.append('containers[%d].name: %s' % (index, error))
        elif name in seen:
            errors.append('containers[%d].name: %s is declared twice (also containers[%d])'
                          % (index, name, seen[name]))
        else:
            seen[name] = index
    for name in only or []:
        error = container_name_error(name)
        if error:
            errors.append('only: %r: %s' % (name, error))
    return errors


def prune_errors(params):
    if params.get('prune_systems_grace') is not None and params['prune_systems_grace'] < 0:
        return ['prune_systems_grace: %d is negative (seconds since a run last touched a shared system)'
                % params['prune_systems_grace']]
    return []


class ContainerSet(object):
    """Plan and apply the declared set of containers of one host."""

    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.host = None
        self.managers = []          # in the order they are applied
        self.removals = []
        self.declarative_kept = []
        self.builds = []            # the distinct systems of the run (_build.Build)
        self.build_runner = None
        self.pruner = None          # the shared systems no container uses any more (_prune)

    def run(self):
        params = self.params
        errors = input_errors(params['containers'], params['only']) + prune_errors(params)
        if errors:
            raise ValueError('; '.join(errors))
        self.host = HostState(self.module, params['nixos_container_bin'])
        with self.host.mutating():
            self._plan_all()
            if self._build_all() and not params['build_only']:
                self._apply_all()
                self._prune()
        return self.result()

    # planning -----------------------------------------------------------------------------
    def _plan_all(self):
        host = self.host
        declared = [spec['name'] for spec in self.params['containers']]
        existing = host.layout.list_names()
        host.load(sorted(set(existing) | set(declared)))
        undeclared = [name for name in existing if name not in declared]
        if self.params['exclusive']:
            self.removals = [n for n in undeclared if host.current(n)['kind'] != 'declarative']
        self.declarative_kept = [n for n in undeclared if host.current(n)['kind'] == 'declarative']
        only = self.params['only']
        if only is not None:
            unknown = [n for n in only if n not in declared and n not in self.removals]
            if unknown:
                raise ValueError('only: %s %s neither declared in containers nor to be removed by exclusive'
                                 % (', '.join(unknown), 'is' if len(unknown) == 1 else 'are'))
        # Explicit addresses of every declared container are taken before any pair is chosen.
        for spec in self.params['containers']:
            host.claim(spec.get('host_address'), spec.get('local_address'))
        for name in self.removals:
            manager = ContainerManager(self.module, default_params(name, state='absent'), host)
            manager.prepare(reasons=[REMOVAL_REASON])
            self.managers.append(manager)
        for index, spec in enumerate(self.params['containers']):
            params = dict(spec)
            params['nixos_container_bin'] = self.params['nixos_container_bin']
            manager = ContainerManager(self.module, params, host)
            try:
                manager.prepare(check_conflicts=False)
            except ValueError as e:
                raise ValueError('containers[%d] (%s): %s' % (index, spec['name'], e))
            self.managers.append(manager)
        # Once every container is planned: the others are checked as they will be after the run.
        errors = []
        for index, manager in enumerate(self.managers[len(self.removals):]):
            try:
                manager.check_conflicts()
            except ValueError as e:
                errors.append('containers[%d] (%s): %s' % (index, manager.name, e))
        if errors:
            raise ValueError('; '.join(errors))

    def in_scope(self, name):
        only = self.params['only']
        return only is None or name in only

    # building -----------------------------------------------------------------------------
    def _build_all(self):
        """Each distinct system of the containers to apply, built once before any of them changes.

        False when one failed to build: its containers are failed with Nix's message, the others
        are not applied (deferred), and nothing changed. With build_only nothing is applied either.
        """
        if self.module.check_mode:
            return True
        if self.params['build'] == 'per_system':
            self._build_systems()
        failed = [item for item in self.builds if item.error]
        for item in failed:
            for manager in item.containers:
                manager.result.update(failed=True, changed=False,
                                      msg='its system failed to build (nothing was changed): %s' % item.error)
        if failed or self.params['build_only']:
            why = 'build_only=true' if not failed else 'the system of %s failed to build' % ', '.join(
                m.name for item in failed for m in item.containers)
            for manager in self.managers:
                if not manager.result.get('failed'):
                    manager.result.update(deferred=True, changed=False, msg='not applied: %s' % why)
        return not failed

    def _build_systems(self):
        builds = {}
        for manager in self.managers:
            request = manager.build_request() if self.in_scope(manager.name) else None
            if request is not None:
                key, text, nixos_path = request
                builds.setdefault(key, Build(key, text, nixos_path)).containers.append(manager)
        self.builds = list(builds.values())
        self.build_runner = self.host.new_runner()
        given = self.params['systems'] or {}
        for item in self.builds:
            if given.get(item.key) and os.path.isdir(given[item.key]):
                item.path = given[item.key]     # built earlier in the rollout (build_only)
            else:
                build(self.build_runner, item)
            for manager in item.containers:
                manager.use_system(item.path)

    # applying -----------------------------------------------------------------------------
    def _apply_all(self):
        for manager in self.managers:
            manager.result['failed'] = False
            if not self.in_scope(manager.name):
                manager.result.update(deferred=True, changed=False)
                continue
            try:
                manager.apply()
            except CliError as e:
                self._record_failure(manager, e.msg, e.as_dict())
            except (ValueError, OSError, IOError) as e:
                self._record_failure(manager, str(e), {})

    def _record_failure(self, manager, msg, details):
        result = manager.result
        result.update(details)
        result.update(failed=True, msg=msg, changed=bool(result.get('actions')))
        # What is there now, so the caller (a rollback) knows where the container stands.
        try:
            after = self.host.refresh(manager.name)
        except (CliError, ValueError, OSError, IOError):
            return
        result['container'] = public_facts(after)
        if after:
            result['generation_after'] = after.get('generation')

    # pruning ------------------------------------------------------------------------------
    def _prune(self):
        """After the changes (read from the profile links as they are now): the shared systems no
        container uses, untouched for prune_systems_grace seconds, and not this run's (_prune)."""
        if not self.params['prune_systems']:
            return
        given = self.params['systems'] or {}
        # A changed container's system from before the call: the role's undo may set it again by
        # system_path (after a recreate, no profile of the container holds it any more).
        before = [m.current['system_path'] for m in self.managers
                  if m.current and m.current.get('system_path') and m.desired.get('state') != 'absent']
        self.pruner = Pruner(grace=self.params['prune_systems_grace'],
                             keep=set(given) | set(item.key for item in self.builds),
                             keep_paths=[path for path in given.values() if path] + before)
        if not self.module.check_mode:
            self.pruner.apply()

    # the result ---------------------------------------------------------------------------
    def result(self):
        containers = {}
        counts = {}
        summary = dict(changed=[], unchanged=[], failed=[], deferred=[], removed=[],
                       declarative_kept=list(self.declarative_kept))
        actions = []
        diff = []
        for manager in self.managers:
            name = manager.name
            entry = dict((k, manager.result[k]) for k in RESULT_KEYS if k in manager.result)
            entry.setdefault('deferred', False)
            entry.setdefault('failed', False)
            containers[name] = entry
            counts[entry['action']] = counts.get(entry['action'], 0) + 1
            actions += entry['actions']
            if entry['failed']:
                summary['failed'].append(name)
            elif entry['deferred']:
                summary['deferred'].append(name)
            elif entry['changed']:
                summary['changed'].append(name)
                if name in self.removals:
                    summary['removed'].append(name)
            else:
                summary['unchanged'].append(name)
            if 'diff' in entry and entry['action'] != 'noop' and not entry['deferred']:
                diff += [_named_diff(name, d) for d in entry['diff']]
        summary['counts'] = counts
        pruned = self.pruner.result() if self.pruner else {}
        if pruned and self.module._diff:
            diff.append(self.pruner.diff())
        if self.build_runner is not None:
            actions = self.build_runner.actions + actions
        result = dict(changed=bool(summary['changed']) or bool(pruned) or any(
            containers[n]['changed'] for n in summary['failed']),
            containers=containers, summary=summary, actions=actions,
            systems=dict((item.key, item.path) for item in self.builds if item.path),
            pruned_systems=pruned)
        if self.module._diff:
            result['diff'] = diff
        return result


def _named_diff(name, diff):
    diff = dict(diff)
    for key in ('before_header', 'after_header'):
        if not diff.get(key, '').startswith('/'):
            diff[key] = '%s (%s)' % (diff.get(key, ''), name)
    return diff


def failure_message(result):
    failed = result['summary']['failed']
    details = ['%s: %s' % (name, result['containers'][name].get('msg', 'failed')) for name in failed]
    return '%d of %d containers failed (%s): %s' % (
        len(failed), len(result['containers']), ', '.join(failed), '; '.join(details))
