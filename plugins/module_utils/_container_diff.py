# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What nixos_container's --diff shows: the files and states users think in, before and after.

This module_util is PRIVATE to the collection: it may change without notice.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.nixfleet.containers.plugins.module_utils._conf import render_conf
from ansible_collections.nixfleet.containers.plugins.module_utils._container_checks import generation_diff
from ansible_collections.nixfleet.containers.plugins.module_utils._nix import render_configuration_nix
from ansible_collections.nixfleet.containers.plugins.module_utils._state import dropin_path, wants_link_path


def container_diff(name, layout, unit_dir, current, desired, plan):
    """The --diff of one container's plan: conf file, configuration.nix, run state, profile, unit files."""
    before_conf = current['conf_text'] if current else ''
    before_nix = (current or {}).get('configuration_nix') or ''
    if plan.action == 'destroy' or desired['state'] == 'absent':
        after_conf, after_nix = '', ''
    else:
        after_conf = render_conf(_without_new_meta(desired['conf'], current))
        extra = desired.get('extra')
        if extra is None and current is None and not desired.get('system_path') \
                and not desired['conf'].get('FLAKE'):
            extra = ''
        after_nix = render_configuration_nix(name, extra) if extra is not None else before_nix
    conf_path = layout.conf_path(name)
    nix_path = layout.configuration_nix(name)
    unit_files = [d for d in _unit_files_diff(name, unit_dir, current, desired) if d['before'] != d['after']]
    return [
        dict(before_header=conf_path, after_header=conf_path, before=before_conf, after=after_conf),
        dict(before_header=nix_path, after_header=nix_path, before=before_nix, after=after_nix),
        dict(before_header='run state', after_header='run state',
             before=_run_state(current) + '\n', after=_run_state_after(current, desired, plan) + '\n'),
    ] + generation_diff(current, plan, layout.system_profile(name)) + unit_files


def _unit_files_diff(name, unit_dir, current, desired):
    current = current or {}
    link_after = desired.get('auto_start_link')
    if link_after is None:
        link_after = bool(current.get('auto_start'))
    return [
        dict(before_header='auto_start (machines.target wants-link)',
             after_header=wants_link_path(unit_dir, name),
             before='%s\n' % bool(current.get('auto_start')), after='%s\n' % link_after),
        dict(before_header=current.get('unit_dropin_path') or 'unit drop-in',
             after_header=dropin_path(unit_dir, name),
             before=current.get('unit_dropin') or '',
             after=(current.get('unit_dropin') or '') if desired.get('unit_dropin') is None
             else desired['unit_dropin']),
    ]


def _without_new_meta(conf, current):
    shown = dict(conf)
    old = (current or {}).get('conf', {})
    for key in ('NIXFLEET_SYSTEM', 'NIXFLEET_CONFIG_SHA256'):
        if key in old:
            shown[key] = old[key]
        else:
            shown.pop(key, None)
    return shown


def _run_state(container):
    if container is None:
        return 'absent'
    return 'running' if container.get('running') else 'stopped'


def _run_state_after(current, desired, plan):
    if desired['state'] == 'absent':
        return 'absent'
    if 'start' in plan.steps:
        return 'running'
    if 'stop' in plan.steps:
        return 'stopped'
    return _run_state(current) if current else 'stopped'
