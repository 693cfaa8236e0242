# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Extra veth pairs of a container (``containers.<name>.extraVeths``, facts §5.3-§5.6).

This module_util is PRIVATE to the collection: it may change without notice.

A declarative container's own unit does three things per extra veth: its preStart deletes a
stale host interface of that name, nspawn gets ``--network-veth-extra=NAME`` (the same name on
both sides), the container init sets the container side up (its local addresses, a route to its
host addresses) and the postStart sets the host side up (enslaved to its bridge, or its host
addresses and a route to its local addresses). The kernel removes the pair when the container
stops. Imperative containers share the template unit, which has none of this: the collection
writes the flag into EXTRA_NSPAWN_FLAGS, keeps the definition in the conf (its own key) and
puts the same steps into the container's unit drop-in (ExecStartPre/ExecStartPost), so every
start, also one the collection does not make, sets the pair up as NixOS's unit does.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import ipaddress
import re

from ansible_collections.nixfleet.containers.plugins.module_utils._names import interface_name_error

OPTION = 'extra_veths'
FLAG = '--network-veth-extra='
# Sub-option -> the attribute of containers.<name>.extraVeths.<veth>, in NixOS's order.
FIELDS = (('host_bridge', 'hostBridge'), ('host_address', 'hostAddress'), ('host_address6', 'hostAddress6'),
          ('local_address', 'localAddress'), ('local_address6', 'localAddress6'))
ADDRESS_FIELDS = tuple(f for f, _nix in FIELDS if f != 'host_bridge')
# The drop-in's lines for the unit's own parts (see _conf_options.unit_dropin_lines) follow this
# comment; unit_properties are read above it.
DROPIN_MARK = "# What the unit of a declarative container does itself (nixfleet.containers: unit_dropin_lines)"
_ADDRESS_CHARACTERS = re.compile(r'^[0-9A-Fa-f.:]+(/[0-9]{1,3})?\Z')


def check(items):
    """The extra veths as a list of dicts with every field (None when unset), in the given order.

    Raises ValueError naming the option for anything NixOS's unit could not set up.
    """
    if items is None:
        return []
    if isinstance(items, (str, bytes, dict)) or not hasattr(items, '__iter__'):
        raise ValueError('%s must be a list of dictionaries, got %s' % (OPTION, type(items).__name__))
    found, names = [], set()
    for item in items:
        if not isinstance(item, dict):
            raise ValueError('%s: every item must be a dictionary, got %r' % (OPTION, item))
        unknown = sorted(set(item) - set(['name']) - set(f for f, _nix in FIELDS))
        if unknown:
            raise ValueError('%s: unknown key(s) %s in %r' % (OPTION, ', '.join(unknown), item))
        name = item.get('name')
        problem = interface_name_error(name) if name is not None else 'name is required'
        if problem:
            raise ValueError('%s: %s' % (OPTION, problem))
        if name in names:
            raise ValueError('%s: %s is listed more than once' % (OPTION, name))
        if name.startswith(('ve-', 'vb-', 'mv-')):
            raise ValueError('%s: %s: the prefixes ve-, vb- and mv- are the names nspawn gives its own interfaces'
                             % (OPTION, name))
        names.add(name)
        veth = dict(name=name)
        for field, _nix in FIELDS:
            value = item.get(field)
            if value is not None and not isinstance(value, str):
                raise ValueError('%s: %s.%s must be a string, got %r' % (OPTION, name, field, value))
            veth[field] = value or None
        if veth['host_bridge']:
            problem = interface_name_error(veth['host_bridge'])
            if problem:
                raise ValueError('%s: %s.host_bridge: %s' % (OPTION, name, problem))
            given = [f for f in ('host_address', 'host_address6') if veth[f]]
            if given:
                # NixOS: "Only one of hostAddress* or hostBridge can be given" (the unit ignores them).
                raise ValueError('%s: %s: %s cannot be combined with host_bridge (the bridge holds the host side)'
                                 % (OPTION, name, ' and '.join(given)))
        for field in ADDRESS_FIELDS:
            _check_address(name, field, veth[field], routed=not veth['host_bridge'])
        found.append(veth)
    return found


def _check_address(name, field, value, routed):
    if value is None:
        return
    try:
        if not _ADDRESS_CHARACTERS.match(value):
            raise ValueError(value)
        address = ipaddress.ip_interface(value)
    except ValueError:
        raise ValueError('%s: %s.%s: %r is not an address with an optional /prefix' % (OPTION, name, field, value))
    if field.endswith('6') and address.version != 6:
        raise ValueError('%s: %s.%s: %r is not an IPv6 address' % (OPTION, name, field, value))
    if routed and address.network.prefixlen != address.max_prefixlen:
        # Without a bridge each side routes to the other's address (ip route add ADDRESS), which
        # ip refuses for a network prefix: the container would never start.
        raise ValueError('%s: %s.%s: %r has a network prefix, which only an extra veth with host_bridge may have '
                         '(without one, each side routes to the address itself)' % (OPTION, name, field, value))


def encode(veths):
    """The conf value: one word per veth, ``NAME,field=value,...`` (fields that are set)."""
    return ' '.join(','.join([v['name']] + ['%s=%s' % (f, v[f]) for f, _nix in FIELDS if v.get(f)])
                    for v in veths)


def decode(text):
    """The inverse of :func:`encode`: the list of dicts (every field present)."""
    veths = []
    for word in (text or '').split():
        parts = word.split(',')
        veth = dict((f, None) for f, _nix in FIELDS)
        veth['name'] = parts[0]
        for part in parts[1:]:
            key, _sep, value = part.partition('=')
            if key in veth and key != 'name':
                veth[key] = value or None
        veths.append(veth)
    return veths


def nspawn_flags(veths):
    return [FLAG + v['name'] for v in veths]


def nix_value(items):
    """``extraVeths`` as data for the Nix renderer: ``{NAME = {hostBridge = ...; ...};}``."""
    return dict((v['name'], dict((nix, v[f]) for f, nix in FIELDS if v.get(f))) for v in check(items))


def _side_commands(veth, own, other):
    """The link up, OWN's addresses on it and routes to OTHER's (argv lists after ``ip``)."""
    name = veth['name']
    commands = [['link', 'set', 'dev', name, 'up']]
    for family, flag in (('', []), ('6', ['-6'])):
        if veth[own + '_address' + family]:
            commands.append(flag + ['addr', 'add', veth[own + '_address' + family], 'dev', name])
    for family, flag in (('', []), ('6', ['-6'])):
        if veth[other + '_address' + family]:
            commands.append(flag + ['route', 'add', veth[other + '_address' + family], 'dev', name])
    return commands


def container_commands(veth):
    """What NixOS's container init runs for VETH inside the container (argv lists)."""
    return _side_commands(veth, 'local', 'host')


def host_commands(veth):
    """What NixOS's postStart runs for VETH on the host (argv lists after ``ip``)."""
    if veth['host_bridge']:
        return [['link', 'set', 'dev', veth['name'], 'master', veth['host_bridge'], 'up']]
    return _side_commands(veth, 'host', 'local')


def unit_lines(container, veths, ip, nixos_container):
    """The drop-in lines that give an imperative CONTAINER its extra VETHS at every start.

    Every word was checked by :func:`check` (interface names and addresses only), so none
    needs systemd's quoting. The container side goes through ``nixos-container run`` after
    READY (an imperative container's init cannot know the veths), then the host side.
    """
    lines = ['ExecStartPre=-%s link del dev %s' % (ip, v['name']) for v in veths]
    for veth in veths:
        lines += ['ExecStartPost=%s run %s -- ip %s' % (nixos_container, container, ' '.join(argv))
                  for argv in container_commands(veth)]
        lines += ['ExecStartPost=%s %s' % (ip, ' '.join(argv)) for argv in host_commands(veth)]
    return lines
