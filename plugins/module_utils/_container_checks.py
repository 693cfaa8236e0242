# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""nixos_container's checks of its parameters against the host, and what a failed apply keeps.

This module_util is PRIVATE to the collection: it may change without notice.

Each check raises ValueError before anything changes: a value the unit could never start with
becomes a clear message here rather than an outage of a running container.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os


def check_unit_dir(unit_dir):
    """The unit directory must not depend on the remote user's cwd, nor climb out with '..'."""
    if unit_dir is not None and (not os.path.isabs(unit_dir) or '..' in unit_dir.split('/')):
        raise ValueError('systemd_unit_dir: %r must be an absolute path without ".."' % unit_dir)


def check_run_options(p):
    """Run options that would silently do nothing, or could only fail after a change."""
    if p['restart'] and p['state'] != 'started':
        raise ValueError('restart: only with state=started (state is %s)' % p['state'])
    # timeout(1) would refuse it only at the start, after the container was created or changed.
    if p.get('start_timeout') is not None and p['start_timeout'] < 1:
        raise ValueError('start_timeout: %s is not a number of seconds to wait (1 or more)' % p['start_timeout'])


def check_address_pair(p):
    """Without a bridge both ends of ve-NAME come from the pair: give both (a bridge needs only the local one)."""
    if p.get('host_bridge') or bool(p.get('host_address')) == bool(p.get('local_address')):
        return
    given, missing = ('host_address', 'local_address') if p.get('host_address') else ('local_address', 'host_address')
    raise ValueError('parameters are required together: host_address, local_address (unless host_bridge is set); '
                     '%s is given without %s' % (given, missing))


def check_bind_sources(bind_mounts):
    """nspawn cannot bind what the host does not have: refuse it before the unit fails."""
    for item in bind_mounts or []:
        source = item.get('host_path') or item.get('mount_point')
        if isinstance(source, str) and os.path.isabs(source) and not os.path.exists(source):
            raise ValueError('bind_mounts: host_path %s does not exist on the host' % source)
        if source == '/' and item.get('read_only') is False:
            raise ValueError('bind_mounts: a read-write bind of the host\'s / gives the container the whole '
                             'host; bind a narrower host_path, or read_only: true')


def snapshot(current):
    """What a failed apply puts back (None for a new or a declarative container)."""
    if not current or current.get('kind') == 'declarative':
        return None
    return dict((key, current.get(key)) for key in (
        'conf_text', 'configuration_nix', 'generation', 'system_path', 'unit_dropin', 'auto_start', 'running'))


def keep_current_guest(desired, options, current):
    """A recreate that names no guest rebuilds the one the container has now.

    The flake is in the conf (``options`` already carries it); a configuration.nix in the
    nixos-container template gives its text back; otherwise the system the profile points to.
    """
    if desired.get('extra') is not None or desired.get('system_path') or options.get('flake'):
        return
    if current.get('extra_config') is not None:
        desired['extra'] = current['extra_config']
    elif current.get('system_path'):
        desired['system_path'] = current['system_path']


def generation_diff(current, plan, path):
    """A rollback changes the profile: show which generation becomes the current one."""
    if not plan.has('rollback'):
        return []
    below = [g for g in current['generations'] if g['number'] < current['generation']]
    target = max(below, key=lambda g: g['number'])
    return [dict(before_header=path, after_header=path,
                 before='generation %s: %s\n' % (current['generation'], current.get('system_path')),
                 after='generation %s: %s\n' % (target['number'], target['path']))]
