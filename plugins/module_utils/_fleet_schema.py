# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet specification: its JSON Schema and the checks a schema cannot express.

This module_util is PRIVATE to the collection: it may change without notice.

A host's (or group's) inventory variable ``containers`` is a list of container specs: the
options of nixos_container (what the nixos_containers module takes) plus what the rollout
needs (``health_check``, ``service_group``, ``tags``). The schema below is the one place
those fields are defined; ``docs/fleet-spec.md`` describes it, and
``python -m json.tool`` on :func:`schema_json` output gives the file for editors.

Validation runs on the controller (the ``fleet_validate`` action), before anything changes:
first the JSON Schema (``jsonschema``, imported lazily so the module_util stays importable
without it), then the checks of the collection's own rules, reused from ``_names`` and
``_conf`` so the controller and the modules can never disagree: the name rule, mutually
exclusive guest options, address pairs, and everything the conf file could not carry.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import ipaddress
import json
import re

from ansible_collections.nixfleet.containers.plugins.module_utils._conf import conf_values_errors
from ansible_collections.nixfleet.containers.plugins.module_utils._conf_options import conf_from_options, GUEST_SOURCE_CONFLICTS
from ansible_collections.nixfleet.containers.plugins.module_utils._names import container_name_error
from ansible_collections.nixfleet.containers.plugins.module_utils._options import (
    fleet_properties,
)

SCHEMA_ID = 'https://nixfleet.invalid/schemas/fleet.schema.json'
# Fields of a spec that belong to the rollout, not to the nixos_containers module.
ROLLOUT_FIELDS = ('health_check', 'service_group', 'tags')
HEALTH_FROM = ('controller', 'host')

_PORT = {'type': 'integer', 'minimum': 1, 'maximum': 65535}
_STR = {'type': 'string', 'minLength': 1}
_SECONDS = {'type': 'number', 'exclusiveMinimum': 0}

_HTTP_CHECK = {
    'type': 'object',
    'additionalProperties': False,
    'description': 'An HTTP GET; healthy when the status is one of expect_status. Either a full '
                   'url, or a port (and path) on the container\'s local address.',
    'properties': {
        'url': {'type': 'string', 'pattern': '^https?://'},
        'port': _PORT,
        'path': {'type': 'string', 'pattern': '^/'},
        'expect_status': {'oneOf': [
            {'type': 'integer', 'minimum': 100, 'maximum': 599},
            {'type': 'array', 'minItems': 1,
             'items': {'type': 'integer', 'minimum': 100, 'maximum': 599}},
        ]},
        'from': {'enum': list(HEALTH_FROM)},
    },
}

_HEALTH_CHECK = {
    'type': 'object',
    'additionalProperties': False,
    'minProperties': 1,
    'description': 'Gates the rollout after a change of the container: every given check must pass.',
    'properties': {
        'http': _HTTP_CHECK,
        'tcp': {'type': 'object', 'additionalProperties': False, 'required': ['port'],
                'properties': {'port': _PORT, 'host': _STR}},
        'command': {'type': 'array', 'minItems': 1, 'items': {'type': 'string'},
                    'description': 'An argv run inside the container (nixos-container run); healthy on exit 0.'},
        'retries': {'type': 'integer', 'minimum': 0},
        'delay': _SECONDS,
        'timeout': _SECONDS,
    },
}

# The container options come from the option catalogue (_options), the rollout's fields from here.
_CONTAINER_PROPERTIES = fleet_properties()
_CONTAINER_PROPERTIES.update({
    'health_check': _HEALTH_CHECK,
    'service_group': _STR,
    'tags': {'type': 'array', 'items': _STR},
})
_CONTAINER = {
    'type': 'object',
    'additionalProperties': False,
    'required': ['name'],
    'properties': _CONTAINER_PROPERTIES,
}

FLEET_SCHEMA = {
    '$schema': 'https://json-schema.org/draft/2020-12/schema',
    '$id': SCHEMA_ID,
    'title': 'nixfleet.containers fleet specification: the containers of one host',
    'type': 'array',
    'items': {'$ref': '#/$defs/container'},
    '$defs': {'container': _CONTAINER, 'health_check': _HEALTH_CHECK},
}

MODULE_FIELDS = tuple(k for k in _CONTAINER['properties'] if k not in ROLLOUT_FIELDS)


def schema_json():
    """The schema as JSON text (for editors: yaml-language-server, check-jsonschema)."""
    return json.dumps(FLEET_SCHEMA, indent=2, sort_keys=True) + '\n'


class SpecProblem(object):
    """One problem: the host, the container (index and name) and the field path."""

    def __init__(self, host, index, container, path, message):
        self.host = host
        self.index = index
        self.container = container
        self.path = path
        self.message = message

    def field(self):
        text = 'containers'
        for part in self.path:
            text += '[%d]' % part if isinstance(part, int) else '.%s' % part
        return text

    def as_dict(self):
        return dict(host=self.host, container=self.container, index=self.index,
                    path=self.field(), message=self.message)

    def __str__(self):
        where = '%s: ' % self.host if self.host is not None else ''
        if self.container is not None:
            where += 'container %s: ' % self.container
        return '%s%s: %s' % (where, self.field(), self.message)


def validate_containers(containers, host=None):
    """Every problem of one host's container list, as SpecProblem objects (empty when valid).

    Raises ImportError when jsonschema is missing (the caller says how to install it).
    """
    import jsonschema    # controller-side only; see the module docstring
    validator = jsonschema.Draft202012Validator(FLEET_SCHEMA)
    errors = []
    for error in validator.iter_errors(containers):
        path = list(error.absolute_path)
        if error.validator in ('dependentRequired', 'required'):
            match = re.match(r"^'([^']+)'", error.message)
            path += [match.group(1)] if match else []
        errors.append(_error(host, containers, path, _message(error)))
    if isinstance(containers, list):
        errors += _rule_errors(containers, host, schema_failed=set(
            e.index for e in errors if e.index is not None))
    return sorted(errors, key=lambda e: (e.index if e.index is not None else -1, e.field(), e.message))


def fleet_address_errors(specs):
    """Explicit addresses given twice in the fleet, as SpecProblem objects.

    SPECS: {host: container list}, in the order to report (the first use of an address is
    kept, every later one is an error naming the first). A local address belongs to one
    container of the whole fleet; a host address to one host (containers of one host may
    share their host-side address, as in NixOS's own examples). Automatic pairs (neither
    address given) are allocated per host and are not checked here.
    """
    first = {}          # address -> (host, index, name, field)
    errors = []
    for host, containers in specs.items():
        if not isinstance(containers, list):
            continue
        for index, spec in enumerate(containers):
            if not isinstance(spec, dict):
                continue
            for field in ('local_address', 'host_address', 'local_address6', 'host_address6'):
                address = _address_key(spec.get(field))
                if address is None:
                    continue
                use = (host, index, spec.get('name'), field)
                seen = first.setdefault(address, use)
                if seen is use or (seen[0] == host and 'local' not in seen[3] + field):
                    continue
                where = 'this host' if seen[0] == host else 'host %s' % seen[0]
                errors.append(SpecProblem(host, index, spec.get('name'), [index, field], (
                    '%s is also the %s of container %s on %s (containers[%d]): explicit addresses must be unique '
                    'across the fleet (leave host_address and local_address out to get a pair allocated on '
                    'each host)') % (address, seen[3], seen[2], where, seen[1])))
    return errors


def fleet_claim_errors(specs):
    """What one container of a host owns claimed by two (SpecProblem objects): a forwarded host port
    (nspawn --port), an extra veth's host end, a host interface moved in."""
    errors = []
    for host, containers in specs.items():
        first = {}      # what is claimed -> (index, name)
        parents = {}    # macvlan parent -> (index, name) of its first container (parents are shared)
        for index, spec in enumerate(containers if isinstance(containers, list) else []):
            if not isinstance(spec, dict):
                continue
            for path, key, what in _claims(spec):
                seen = first.setdefault(key, (index, spec.get('name')))
                if seen[0] != index:
                    errors.append(SpecProblem(host, index, spec.get('name'), [index] + path, (
                        '%s is also %s by container %s on this host (containers[%d])' % (what, _CLAIMED[key[0]], seen[1], seen[0]))))
                elif path[0] == 'interfaces' and key[1] in parents and parents[key[1]][0] != index:
                    seen = parents[key[1]]
                    errors.append(SpecProblem(host, index, spec.get('name'), [index] + path, (
                        '%s is also a macvlan parent of container %s on this host (containers[%d])' % (what, seen[1], seen[0]))))
            # A moved-in interface is gone from the host while its container runs: nobody's macvlan parent.
            for number, link in enumerate(spec.get('macvlans') if isinstance(spec.get('macvlans'), list) else []):
                if not isinstance(link, str):
                    continue
                parents.setdefault(link, (index, spec.get('name')))
                seen = first.get(('link', link))
                if seen is not None and seen[0] != index and _moves_in(containers[seen[0]], link):
                    errors.append(SpecProblem(host, index, spec.get('name'), [index, 'macvlans', number], (
                        'macvlan parent %s is also used by container %s on this host (containers[%d])' % (link, seen[1], seen[0]))))
    return errors


_CLAIMED = {'port': 'forwarded', 'link': 'used'}


def _moves_in(spec, link):
    return link in (spec.get('interfaces') if isinstance(spec.get('interfaces'), list) else [])


def _claims(spec):
    """[(path, key, what)] of SPEC's claims on its host."""
    found = []
    for number, forward in enumerate(spec.get('forward_ports') if isinstance(spec.get('forward_ports'), list) else []):
        if isinstance(forward, dict) and isinstance(forward.get('host_port'), int):
            protocol = forward.get('protocol') or 'tcp'
            found.append((['forward_ports', number, 'host_port'], ('port', protocol, forward['host_port']),
                          'host port %d/%s' % (forward['host_port'], protocol)))
    for number, veth in enumerate(spec.get('extra_veths') if isinstance(spec.get('extra_veths'), list) else []):
        if isinstance(veth, dict) and isinstance(veth.get('name'), str):
            found.append((['extra_veths', number, 'name'], ('link', veth['name']), 'host interface %s' % veth['name']))
    for number, name in enumerate(spec.get('interfaces') if isinstance(spec.get('interfaces'), list) else []):
        if isinstance(name, str):
            found.append((['interfaces', number], ('link', name), 'host interface %s' % name))
    return found


def _address_key(value):
    if not isinstance(value, str):
        return None
    try:
        return str(ipaddress.ip_address(value.split('/', 1)[0].strip()))
    except ValueError:
        return None


def module_options(container):
    """The part of one spec that the nixos_containers module takes.

    The spec declares a container's forwards: none given means none (a forward removed from
    the spec, or added to the conf by hand, is drift), not "leave them as they are".
    """
    options = dict((k, v) for k, v in container.items() if k in MODULE_FIELDS)
    if options.get('state') != 'absent' and options.get('private_network', True) is not False:
        options.setdefault('forward_ports', [])
    return options


def _error(host, containers, path, message):
    index = path[0] if path and isinstance(path[0], int) else None
    name = None
    if index is not None and isinstance(containers, list) and isinstance(containers[index], dict):
        value = containers[index].get('name')
        name = value if isinstance(value, str) else None
    return SpecProblem(host, index, name, path, message)


def _message(error):
    if error.validator == 'additionalProperties':
        extra = sorted(set(error.instance) - set(error.schema.get('properties', {})))
        return 'unknown field%s %s' % ('s' if len(extra) > 1 else '', ', '.join(extra))
    if error.validator == 'required':
        return error.message.replace("'", '')
    if error.validator == 'dependentRequired':
        match = re.match(r"^'(.+)' is a dependency of '(.+)'$", error.message)
        if match:
            return '%s is given, so %s must be given too' % (match.group(2), match.group(1))
        return error.message.replace("'", '')
    if error.validator == 'oneOf' and error.absolute_path and error.absolute_path[-1] == 'expect_status':
        return 'expect_status must be an HTTP status (100..599) or a list of them, got %r' % (error.instance,)
    return error.message


def _rule_errors(containers, host, schema_failed):
    errors = []
    seen = {}
    for index, spec in enumerate(containers):
        if not isinstance(spec, dict):
            continue
        name = spec.get('name')
        if isinstance(name, str):
            problem = container_name_error(name)
            if problem:
                errors.append(SpecProblem(host, index, name, [index, 'name'], problem))
            elif name in seen:
                errors.append(SpecProblem(host, index, name, [index, 'name'],
                                          'the name is declared twice on this host (also containers[%d])'
                                          % seen[name]))
            else:
                seen[name] = index
        clash = next((pair for pair in GUEST_SOURCE_CONFLICTS if all(spec.get(k) is not None for k in pair)), None)
        if clash:
            errors.append(SpecProblem(host, index, name, [index, clash[1]],
                                      'mutually exclusive with %s: give one of config (with or without '
                                      'settings), config_file, flake, system_path (config with system_path: '
                                      'the configuration that system was built from)' % clash[0]))
        http = (spec.get('health_check') or {}).get('http') if isinstance(spec.get('health_check'), dict) else None
        if isinstance(http, dict) and ('url' in http) == ('port' in http):
            errors.append(SpecProblem(host, index, name, [index, 'health_check', 'http'],
                                      'give either url or port (with an optional path)'))
        if index not in schema_failed:
            errors += _conf_errors(spec, host, index, name)
    return errors


def _conf_errors(spec, host, index, name):
    """What the module would refuse in the conf file, found on the controller."""
    try:
        values = conf_from_options(module_options(spec))
    except ValueError as e:
        return [SpecProblem(host, index, name, [index] + _field_of(str(e)), _after_field(str(e)))]
    return [SpecProblem(host, index, name, [index] + _field_of(problem), _after_field(problem))
            for problem in conf_values_errors(values)]


def _field_of(message):
    head = message.split(':', 1)[0].split(' ', 1)[0]
    return [head] if head in MODULE_FIELDS else []


def _after_field(message):
    head, sep, rest = message.partition(':')
    return rest.strip() if sep and head in MODULE_FIELDS else message
