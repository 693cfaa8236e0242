# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of nixfleet.containers.fleet_validate: checks fleet specs on the controller."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible.errors import AnsibleError
from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.action import ActionBase

from ansible_collections.nixfleet.containers.plugins.module_utils._fleet_schema import (
    fleet_address_errors,
    fleet_claim_errors,
    module_options,
    validate_containers,
)

ARGUMENT_SPEC = dict(
    containers=dict(type='raw'),
    hosts=dict(type='list', elements='str'),
    variable=dict(type='str', default='containers'),
)


class ActionModule(ActionBase):
    """Runs on the controller only: nothing is sent to the host, so nothing there can change."""

    TRANSFERS_FILES = False
    _requires_connection = False
    _VALID_ARGS = frozenset(ARGUMENT_SPEC)

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        task_vars = task_vars or {}
        validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        specs = self._specs(args, task_vars)
        try:
            errors = []
            for host, containers in specs.items():
                errors += validate_containers(containers, host=host)
            errors += fleet_address_errors(specs)
            errors += fleet_claim_errors(specs)
        except ImportError as e:
            raise AnsibleError('nixfleet.containers.fleet_validate needs the Python library jsonschema on the '
                               'controller (pip install "jsonschema>=4.17"): %s' % to_native(e))
        result.update(
            changed=False,
            valid=not errors,
            errors=[e.as_dict() for e in errors],
            hosts=sorted(specs),
            containers=dict((host, [module_options(c) for c in containers])
                            for host, containers in specs.items()
                            if isinstance(containers, list) and all(isinstance(c, dict) for c in containers)),
        )
        if errors:
            result['failed'] = True
            result['msg'] = 'the fleet spec is not valid (%d problem%s):\n%s' % (
                len(errors), '' if len(errors) == 1 else 's', '\n'.join(str(e) for e in errors))
        else:
            count = sum(len(c) for c in specs.values())
            result['msg'] = 'the fleet spec is valid: %d container%s on %d host%s' % (
                count, '' if count == 1 else 's', len(specs), '' if len(specs) == 1 else 's')
        return result

    def _specs(self, args, task_vars):
        """{host: container list} from the argument, the named hosts' variable, or this host's."""
        variable = args['variable']
        if args['containers'] is not None:
            if args['hosts']:
                raise AnsibleError('fleet_validate: give containers or hosts, not both')
            return {task_vars.get('inventory_hostname'): args['containers']}
        if args['hosts']:
            hostvars = task_vars.get('hostvars', {})
            specs = {}
            for host in args['hosts']:
                if host not in hostvars:
                    raise AnsibleError('fleet_validate: hosts: %s is not in the inventory' % host)
                specs[host] = self._templar.template(hostvars[host].get(variable, []))
            return specs
        value = task_vars.get(variable, [])
        return {task_vars.get('inventory_hostname'): self._templar.template(value)}
