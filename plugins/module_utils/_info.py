# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The nixos_container_info module's work: every container's facts with one systemctl call.

This module_util is PRIVATE to the collection: it may change without notice.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.nixfleet.containers.plugins.module_utils._cli import Runner
from ansible_collections.nixfleet.containers.plugins.module_utils._container import SEARCH_DIRS, public_facts
from ansible_collections.nixfleet.containers.plugins.module_utils._paths import Layout
from ansible_collections.nixfleet.containers.plugins.module_utils._state import (
    read_container,
    with_unit_files,
    with_unit_state,
)


def gather(module):
    """The facts; raises ValueError for a name no container can have (it is part of a path)."""
    name = module.params['name']
    if name is not None and (not name or '/' in name or '\0' in name or name.startswith('.')):
        # Looser than the create rule: a declarative container may have a longer name or a '_'.
        raise ValueError('name: %r is not a container name (empty, with "/" or starting with ".")' % name)
    layout = Layout.detect()
    systemctl = module.get_bin_path('systemctl', required=False, opt_dirs=SEARCH_DIRS)
    runner = Runner(lambda argv, data=None: module.run_command(argv, data=data),
                    systemctl=systemctl or 'systemctl')
    names = [name] if name else layout.list_names()
    found = [c for c in (read_container(layout, n) for n in names) if c is not None]
    units = runner.show_units([c['name'] for c in found]) if (found and systemctl) else {}
    containers = []
    for container in found:
        container = with_unit_files(with_unit_state(container, units.get(container['name'])))
        if module.params['leader_pid'] and container['running']:
            container['leader_pid'] = _leader_pid(module, container['name'])
        containers.append(public_facts(container))
    result = dict(containers=containers)
    if name:
        result['exists'] = bool(containers)
        result['container'] = containers[0] if containers else {}
    return result


def _leader_pid(module, name):
    machinectl = module.get_bin_path('machinectl', required=False, opt_dirs=SEARCH_DIRS)
    if not machinectl:
        return None
    rc, out, err = module.run_command([machinectl, 'show', name, '-p', 'Leader', '--value'])
    value = out.strip()
    return int(value) if rc == 0 and value.isdigit() else None
