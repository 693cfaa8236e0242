# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Desired vs current container state -> a plan: one action, its reasons, ordered steps.

This module_util is PRIVATE to the collection: it may change without notice.

Pure: no I/O. Why a change reloads or restarts comes from facts §1.3.2 and §5.7: a new
guest system is activated in place (``nixos-container update`` reloads a running container,
switch-to-configuration inside), while anything in the conf file (addresses, ports, bridge,
nspawn flags) is only read when the unit starts, so it needs a stop and a start.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from collections import namedtuple

from ansible_collections.nixfleet.containers.plugins.module_utils._conf import (
    normalise_conf,
    NIXFLEET_PREFIX as META_PREFIX,
)
# From the option catalogue: conf keys that nothing reads at start (AUTO_START, facts §1.4) or
# that only feed `update`, and those whose change means a different guest system (update, not
# restart). Any other key (our NIXFLEET_ bookkeeping aside) is read at start: a restart.
from ansible_collections.nixfleet.containers.plugins.module_utils._errors import InputError
from ansible_collections.nixfleet.containers.plugins.module_utils._options import (
    GUEST_KEYS,
    NOT_READ_AT_START,
    RESTART_BOOKKEEPING_KEYS,
)
from ansible_collections.nixfleet.containers.plugins.module_utils._steps import Plan, Step


class PlanError(InputError):
    """The request cannot be carried out (e.g. it would modify a declarative container)."""


# The planner's decision: the operations by name. plan() makes them Steps; the container's
# binding (_container_steps.bind) gives each step its arguments.
_Decision = namedtuple('_Decision', 'action steps reasons')


def conf_core(values):
    """The conf values that matter to the unit, normalised for comparison."""
    return dict((k, v) for k, v in normalise_conf(values).items()
                if not k.startswith(META_PREFIX) or k in RESTART_BOOKKEEPING_KEYS)


def restart_differences(current_conf, desired_conf):
    """(key, before, after) for conf keys whose change needs the container restarted."""
    before, after = conf_core(current_conf), conf_core(desired_conf)
    keys = sorted(set(before) | set(after))
    return [(k, before.get(k, ''), after.get(k, '')) for k in keys
            if k not in NOT_READ_AT_START and before.get(k, '') != after.get(k, '')]


def conf_needs_write(current_conf, desired_conf):
    before, after = normalise_conf(current_conf), normalise_conf(desired_conf)
    return any(before.get(k, '') != after.get(k, '') for k in set(before) | set(after)
               if not k.startswith(META_PREFIX) or k in GUEST_KEYS or k in RESTART_BOOKKEEPING_KEYS)


def guest_reasons(current, desired):
    """Why the guest system must be rebuilt (``update``); empty when it need not be."""
    reasons = []
    conf = current['conf']
    want = desired['conf']
    for key in GUEST_KEYS:
        if conf.get(key, '') != (want.get(key) or ''):
            reasons.append('%s changes from %r to %r' % (key, conf.get(key, ''), want.get(key) or ''))
    if desired.get('extra') is not None:
        have = current.get('extra_config')
        if have is None and current.get('configuration_nix') is None:
            reasons.append('the container has no configuration.nix yet')
        elif have is None:
            reasons.append('configuration.nix does not follow the nixos-container template (edited by hand?)')
        elif have != desired['extra']:
            reasons.append('the guest configuration changed')
    if desired.get('config_digest') and conf.get('NIXFLEET_CONFIG_SHA256') != desired['config_digest']:
        reasons.append('the content of config_file changed')
    if desired.get('system_path') and current.get('system_path') != desired['system_path']:
        reasons.append('the system changes from %s to %s' % (current.get('system_path'), desired['system_path']))
    recorded = conf.get('NIXFLEET_SYSTEM')
    if recorded and current.get('system_path') and recorded != current['system_path'] and not desired.get('rollback'):
        reasons.append('the profile points to %s, not to the system built from the configuration '
                       '(%s): rolled back or changed by hand' % (current['system_path'], recorded))
    if desired.get('rebuild') and not reasons:
        reasons.append('rebuild requested')
    return reasons


def unit_file_changes(current, desired):
    """(link_changes, dropin_changes): the boot wants-link and our drop-in of container@NAME.

    ``desired['auto_start_link']`` / ``desired['unit_dropin']`` None means "leave as it is";
    a drop-in text '' means "no drop-in".
    """
    current = current or {}
    want_link = desired.get('auto_start_link')
    link = want_link is not None and bool(current.get('auto_start')) != want_link
    want_dropin = desired.get('unit_dropin')
    dropin = want_dropin is not None and (current.get('unit_dropin') or '') != want_dropin
    return link, dropin


def _with_unit_files(result, current, desired):
    """Write the link and drop-in after create/destroy and before the start (no restart for them)."""
    link, dropin = unit_file_changes(current, desired)
    extra = (['link'] if link else []) + (['write_dropin'] if dropin else [])
    if not extra:
        return result
    steps = list(result.steps)
    at = steps.index('start') if 'start' in steps else len(steps)
    steps[at:at] = extra
    return _Decision(result.action if result.steps else 'configure', steps, result.reasons)


def plan(current, desired):
    """current: container dict with unit state (see _state) or None; desired: see module.

    The plan's steps name their operations; their arguments come from the binding.
    """
    decision = _decide(current, desired)
    return Plan(decision.action, [Step(op) for op in decision.steps], decision.reasons)


def _decide(current, desired):
    state = desired['state']
    if current is None:
        return _with_unit_files(_plan_missing(desired), None, desired)
    if state == 'absent':
        _refuse_declarative(current, 'destroy it')
        return _with_unit_files(_Decision('destroy', ['destroy'], ['state=absent and the container exists']),
                                current, desired)
    if desired.get('recreate'):
        _refuse_declarative(current, 'recreate it')
        steps = ['destroy', 'create'] + _recorded_configuration(desired) + (['start'] if _want_running(current, state) else [])
        return _with_unit_files(_Decision('recreate', steps, ['recreate requested']), None, desired)
    return _plan_existing(current, desired)


def _plan_missing(desired):
    if desired['state'] == 'absent':
        return _Decision('noop', [], [])
    if desired.get('rollback'):
        # Creating it would be no rollback at all (and the next run would then refuse).
        raise PlanError('rollback: the container does not exist, so it has no generation to roll back to')
    steps = ['create'] + _recorded_configuration(desired) + (['start'] if desired['state'] == 'started' else [])
    return _Decision('create', steps, ['the container does not exist'])


def _recorded_configuration(desired, current=None):
    """['write_configuration'] when a given system_path comes with the configuration it was built
    from (config/settings): the CLI writes no configuration.nix for a prebuilt system."""
    if not desired.get('system_path') or desired.get('extra') is None:
        return []
    return [] if current and current.get('extra_config') == desired['extra'] else ['write_configuration']


def _want_running(current, state):
    return state == 'started' or (state == 'present' and current.get('running'))


def _refuse_declarative(current, what):
    if current.get('kind') == 'declarative':
        raise PlanError(
            'container %s is declarative (its conf is a read-only link from the host configuration); '
            'refusing to %s: change containers.%s in the host configuration.nix instead'
            % (current['name'], what, current['name']))


def _refuse_rollback_at_oldest(current):
    numbers = [g.get('number') for g in current.get('generations') or []]
    if current.get('generation') is None or not [n for n in numbers if n is not None and n < current['generation']]:
        raise PlanError('rollback: container %s has no generation before %s to roll back to'
                        % (current['name'], current.get('generation')))


def _plan_existing(current, desired):
    running = bool(current.get('running'))
    want_running = _want_running(current, desired['state'])
    restart_diffs = restart_differences(current['conf'], desired['conf'])
    write_conf = conf_needs_write(current['conf'], desired['conf'])
    guest = [] if desired.get('rollback') else guest_reasons(current, desired)
    link_change, dropin_change = unit_file_changes(current, desired)
    if current.get('kind') == 'declarative' and (write_conf or guest or desired.get('rollback')
                                                 or link_change or dropin_change):
        _refuse_declarative(current, 'change it')

    reasons = ['%s changes from %r to %r' % d for d in restart_diffs]
    if dropin_change:
        # Unit properties (resource limits) are applied when the unit starts: a planned restart.
        restart_diffs = restart_diffs + [('unit_properties', current.get('unit_properties'), None)]
        if desired.get('unit_properties') is not None or current.get('conf') == desired.get('conf'):
            reasons.append('the unit properties (resource limits) of container@%s change from %r to %r'
                           % (current['name'], current.get('unit_properties') or {},
                              desired.get('unit_properties') or {}))
    if link_change:
        reasons.append('auto_start (the machines.target wants-link) changes from %r to %r '
                       '(no restart needed)' % (bool(current.get('auto_start')), desired['auto_start_link']))
    if write_conf and not restart_diffs:
        reasons.append('the conf file changes (no restart needed)')
    reasons += guest
    steps = []
    rebuild = ['set_system'] + _recorded_configuration(desired, current) if desired.get('system_path') else ['update']
    if desired.get('rollback'):
        _refuse_rollback_at_oldest(current)
        reasons.insert(0, 'rollback requested')
        steps.append('rollback')
        if desired.get('extra') is not None and current.get('extra_config') != desired['extra']:
            # The configuration.nix of the generation rolled back to (no build: it is built already).
            reasons.append('configuration.nix goes back to the given configuration')
            steps.append('write_configuration')
    restart_needed = running and want_running and (restart_diffs or desired.get('restart'))
    if restart_needed:
        if desired.get('restart') and not restart_diffs:
            reasons.append('restart requested')
        steps.append('stop')
    elif running and not want_running:
        steps.append('stop')
        reasons.append('state=%s and the container is running' % desired['state'])
    if write_conf:
        steps.append('write_conf')
    if link_change:
        steps.append('link')
    if dropin_change:
        steps.append('write_dropin')
    if guest:
        steps += rebuild
        if running and not restart_needed and want_running and desired.get('system_path'):
            steps.append('reload')
    if desired.get('rollback') and running and want_running and not restart_needed:
        steps.append('reload')
    if restart_needed or (want_running and not running):
        steps.append('start')
        if not running:
            reasons.append('state=started and the container is not running')
    return _Decision(_action_of(steps, guest, desired), steps, reasons)


def _action_of(steps, guest, desired):
    if not steps:
        return 'noop'
    if 'rollback' in steps:
        return 'rollback'
    if 'stop' in steps and 'start' in steps:
        return 'restart'
    if guest and 'stop' not in steps:
        return 'reload'
    if 'start' in steps:
        return 'start'
    if 'stop' in steps:
        return 'stop'
    return 'reload' if guest else 'configure'
