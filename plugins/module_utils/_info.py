# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The nixos_container_info module's work: every container's facts with one systemctl call.

This module_util is PRIVATE to the collection: it may change without notice.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.nixfleet.containers.plugins.module_utils._cli import Runner
from ansible_collections.nixfleet.containers.plugins.module_utils._container import public_facts
from ansible_collections.nixfleet.containers.plugins.module_utils._host import binary_finder
from ansible_collections.nixfleet.containers.plugins.module_utils._paths import Layout
from ansible_collections.nixfleet.containers.plugins.module_utils._state import (
    read_containers,
    with_unit_files,
)


def gather(module):
    """The facts; raises ValueError for a name no container can have (it is part of a path)."""
    name = module.params['name']
    if name is not None and (not name or '/' in name or '\0' in name or name.startswith('.')):
        # Looser than the create rule: a declarative container may have a longer name or a '_'.
        raise ValueError('name: %r is not a container name (empty, with "/" or starting with ".")' % name)
    layout = Layout.detect()
    which = binary_finder(module)
    systemctl = which('systemctl')
    runner = Runner(lambda argv, data=None: module.run_command(argv, data=data),
                    systemctl=systemctl or 'systemctl')
    names = [name] if name else layout.list_names()
    read = read_containers(layout, names, runner.show_units if systemctl else lambda names: {})
    containers = []
    for container in (read[n] for n in names if read[n] is not None):
        container = with_unit_files(container)
        if module.params['leader_pid'] and container['running']:
            container['leader_pid'] = _leader_pid(module, which, container['name'])
        containers.append(public_facts(container))
    result = dict(containers=containers)
    if name:
        result['exists'] = bool(containers)
        result['container'] = containers[0] if containers else {}
    return result


def _leader_pid(module, which, name):
    machinectl = which('machinectl')
    if not machinectl:
        return None
    rc, out, err = module.run_command([machinectl, 'show', name, '-p', 'Leader', '--value'])
    value = out.strip()
    return int(value) if rc == 0 and value.isdigit() else None
