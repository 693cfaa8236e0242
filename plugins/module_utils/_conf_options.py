# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Module options <-> conf values: how each option is spelled in ``NAME.conf`` (facts §2.3).

This module_util is PRIVATE to the collection: it may change without notice.

The one encoding of the container options (the catalogue, ``_options``, says which key each
option owns); the conf's format, its checks and its rendering are ``_conf``'s.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import itertools
import re

from ansible_collections.nixfleet.containers.plugins.module_utils import _extra_veths
from ansible_collections.nixfleet.containers.plugins.module_utils._conf import check_word, DECIMAL, PROTOCOLS
from ansible_collections.nixfleet.containers.plugins.module_utils._options import GUEST_OPTIONS, OPTION_FOR_KEY

# The guest sources exclude each other, except that settings adds to config, and config (or
# settings) with system_path is the configuration that system was built from, recorded in
# configuration.nix without a build (how the fleet role puts a system from before its run back).
_MAY_GO_TOGETHER = ({'config', 'settings'}, {'config', 'system_path'}, {'settings', 'system_path'})
GUEST_SOURCE_CONFLICTS = [pair for pair in itertools.combinations(GUEST_OPTIONS + ('settings',), 2)
                          if set(pair) not in _MAY_GO_TOGETHER]

_FLAKE_WITH_ATTR = re.compile(r'^(.*)#([^#"]+)\Z')


# ---------------------------------------------------------------------------------------
# Building from module options

def conf_from_options(opts):
    """The conf values of an imperative container from the module's options.

    ``opts`` maps option names to values; a missing option or None means "not given".
    Options: private_network (default True, as ``create``), host_address, local_address,
    host_address6, local_address6, local_mac_address, host_bridge, forward_ports, bind_mounts,
    additional_capabilities, enable_tun, tmpfs, ephemeral, extra_flags, private_users,
    auto_start, flake (``ref`` or ``ref#attr``), flake_attr, system_path, and also
    interfaces, macvlans, network_namespace_path and copy_resolv_conf (facts P-13: only
    written when given). The six keys ``create`` always writes are always present.
    Raises ValueError, naming the option, for input of the wrong shape; check the result
    with :func:`conf_values_error` for values the unit cannot carry.
    """
    private_network = _option_bool(opts, 'private_network', default=True)
    flake, flake_attr = _flake_and_attr(opts)
    values = {
        'PRIVATE_NETWORK': '1' if private_network else '0',
        'HOST_ADDRESS': _option_text(opts, 'host_address'),
        'LOCAL_ADDRESS': _option_text(opts, 'local_address'),
        'HOST_BRIDGE': _option_text(opts, 'host_bridge'),
        'HOST_PORT': ','.join(_port_specs(opts.get('forward_ports'))),
        'AUTO_START': '1' if _option_bool(opts, 'auto_start', default=False) else '0',
    }
    optional = (
        ('FLAKE', flake),
        ('SYSTEM_PATH', _option_text(opts, 'system_path')),
        ('COPY_RESOLV_CONF', _optional_flag(opts, 'copy_resolv_conf')),
        ('HOST_ADDRESS6', _option_text(opts, 'host_address6')),
        ('LOCAL_ADDRESS6', _option_text(opts, 'local_address6')),
        ('LOCAL_MAC_ADDRESS', _option_text(opts, 'local_mac_address')),
        ('NETWORK_NAMESPACE_PATH', _option_text(opts, 'network_namespace_path')),
        ('PRIVATE_USERS', _private_users(opts.get('private_users'))),
        ('INTERFACES', ' '.join(_option_list(opts, 'interfaces'))),
        ('MACVLANS', ' '.join(_option_list(opts, 'macvlans'))),
        ('EXTRA_NSPAWN_FLAGS', ' '.join(_nspawn_flags(opts))),
        ('NIXFLEET_FLAKE_ATTR', flake_attr),
        ('NIXFLEET_EXTRA_VETHS', _extra_veths.encode(_extra_veths.check(opts.get('extra_veths')))),
    )
    for key, value in optional:
        if value:
            values[key] = value
    return values


def _option_text(opts, name):
    value = opts.get(name)
    if value is None:
        return ''
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError('%s must be a string, got %s' % (name, type(value).__name__))
    return str(value)


def _option_bool(opts, name, default):
    value = opts.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ValueError('%s must be a boolean, got %r' % (name, value))
    return value


def _optional_flag(opts, name):
    if opts.get(name) is None:
        return ''
    return '1' if _option_bool(opts, name, default=False) else '0'


def _option_list(opts, name):
    value = opts.get(name)
    if value is None:
        return []
    if isinstance(value, (str, bytes, dict)) or not hasattr(value, '__iter__'):
        raise ValueError('%s must be a list, got %s' % (name, type(value).__name__))
    items = list(value)
    for item in items:
        if not isinstance(item, str) or not item:
            raise ValueError('%s: every item must be a non-empty string, got %r' % (name, item))
        check_word(name, item)
    return items


def _list_of_dicts(value, name):
    if value is None:
        return []
    if isinstance(value, (str, bytes, dict)) or not hasattr(value, '__iter__'):
        raise ValueError('%s must be a list of dictionaries, got %s' % (name, type(value).__name__))
    items = list(value)
    for item in items:
        if not isinstance(item, dict):
            raise ValueError('%s: every item must be a dictionary, got %r' % (name, item))
    return items


def _flake_and_attr(opts):
    flake = _option_text(opts, 'flake')
    attr = _option_text(opts, 'flake_attr')
    match = _FLAKE_WITH_ATTR.match(flake)
    if match:
        # Split 'ref#attr' the way the CLI does; the conf's FLAKE never holds the attribute.
        if attr and attr != match.group(2):
            raise ValueError('flake %r names the attribute %r but flake_attr is %r: give it once'
                             % (flake, match.group(2), attr))
        flake, attr = match.group(1), match.group(2)
    if attr and not flake:
        raise ValueError('flake_attr needs flake')
    return flake, attr


def _port_number(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not DECIMAL.match(str(value)):
        raise ValueError('forward_ports: %s must be a port number, got %r' % (name, value))
    return int(value)


def _port_specs(forward_ports):
    """``proto:host:container`` for each forward, as the declarative module writes HOST_PORT."""
    specs = []
    for item in _list_of_dicts(forward_ports, 'forward_ports'):
        protocol = item.get('protocol') or 'tcp'
        if protocol not in PROTOCOLS:
            raise ValueError('forward_ports: protocol must be tcp or udp, got %r' % (protocol,))
        if item.get('host_port') is None:
            raise ValueError('forward_ports: host_port is required in %r' % (item,))
        host_port = _port_number(item['host_port'], 'host_port')
        container_port = item.get('container_port')
        container_port = host_port if container_port is None else _port_number(container_port, 'container_port')
        specs.append('%s:%d:%d' % (protocol, host_port, container_port))
    return specs


def _private_users(value):
    if value is None:
        return ''
    if isinstance(value, bool):
        raise ValueError('private_users must be no, identity, pick or a number, got %r' % value)
    if isinstance(value, int):
        if not 0 <= value <= 0xFFFFFFFF:
            raise ValueError('private_users must be between 0 and 4294967295, got %d' % value)
        return str(value)
    if isinstance(value, str):
        return value
    raise ValueError('private_users must be no, identity, pick or a number, got %r' % (value,))


def _nspawn_flags(opts):
    """EXTRA_NSPAWN_FLAGS words: what the template unit cannot express itself (facts §5.1).

    Order: bind mounts (as the declarative module), --capability, --tmpfs, --ephemeral,
    --network-veth-extra, then extra_flags.
    """
    flags = [_bind_flag(item) for item in _list_of_dicts(opts.get('bind_mounts'), 'bind_mounts')]
    capabilities = _option_list(opts, 'additional_capabilities')
    if _option_bool(opts, 'enable_tun', default=False) and 'CAP_NET_ADMIN' not in capabilities:
        # The declarative enableTun also sets DeviceAllow=/dev/net/tun rwm on its own unit;
        # a conf cannot set that for the imperative template, so only the capability is added.
        capabilities.append('CAP_NET_ADMIN')
    if capabilities:
        flags.append('--capability=' + ','.join(capabilities))
    flags.extend('--tmpfs=' + path for path in _option_list(opts, 'tmpfs'))
    if _option_bool(opts, 'ephemeral', default=False):
        flags.append('--ephemeral')
    flags.extend(_extra_veths.nspawn_flags(_extra_veths.check(opts.get('extra_veths'))))
    flags.extend(_option_list(opts, 'extra_flags'))
    return flags


def _bind_flag(item):
    mount_point = item.get('mount_point')
    host_path = item.get('host_path')
    if host_path is None:
        host_path = mount_point
    for name, path in (('mount_point', mount_point), ('host_path', host_path)):
        if not isinstance(path, str) or not path.startswith('/'):
            raise ValueError('bind_mounts: %s must be an absolute path, got %r' % (name, path))
        if ':' in path:
            # nspawn separates host and container path with ':'.
            raise ValueError('bind_mounts: %s %r must not contain ":"' % (name, path))
        check_word('bind_mounts', path)
    read_only = item.get('read_only')
    if read_only is None:
        read_only = True                # as the declarative isReadOnly default
    if not isinstance(read_only, bool):
        raise ValueError('bind_mounts: read_only must be a boolean, got %r' % (read_only,))
    return '%s=%s:%s' % ('--bind-ro' if read_only else '--bind', host_path, mount_point)


# ---------------------------------------------------------------------------------------
# What a declarative container's own unit has and the imperative template lacks

# NixOS's ephemeral root: a runtime directory systemd makes at start and removes at stop.
EPHEMERAL_ROOT_LINES = ('Environment="root=/run/nixos-containers/%i"', 'RuntimeDirectory=nixos-containers/%i')


def unit_dropin_lines(name, values, ip, nixos_container):
    """The unit drop-in lines that give an imperative container, from its conf VALUES, what a
    declarative container's own unit does (facts §5.2-§5.6): the ephemeral root and the extra
    veths. IP is the host's ``ip`` (needed only with extra veths). [] when there are none."""
    lines = []
    if '--ephemeral' in values.get('EXTRA_NSPAWN_FLAGS', '').split():
        lines += EPHEMERAL_ROOT_LINES
    veths = _extra_veths.decode(values.get('NIXFLEET_EXTRA_VETHS'))
    if veths:
        lines += _extra_veths.unit_lines(name, veths, ip, nixos_container)
    return [_extra_veths.DROPIN_MARK] + lines if lines else []


# ---------------------------------------------------------------------------------------
# Reading back into module options (the inverse of conf_from_options)

def options_from_conf(values):
    """The module options a conf describes, so that conf_from_options gives the conf back.

    Flags in EXTRA_NSPAWN_FLAGS that no option produces (or that carry nspawn mount
    options) come back as extra_flags; an extra flag that looks exactly like a bind mount
    comes back as one.
    """
    values = dict((k, v) for k, v in values.items())
    options = dict(
        private_network=values.get('PRIVATE_NETWORK', '0') == '1',
        auto_start=values.get('AUTO_START', '0') == '1',
        forward_ports=[_port_option(spec) for spec in _words(values.get('HOST_PORT', ''), ',')],
        flake=values.get('FLAKE') or None,
        flake_attr=values.get('NIXFLEET_FLAKE_ATTR') or None,
        private_users=values.get('PRIVATE_USERS') or None,
        system_path=values.get('SYSTEM_PATH') or None,
        interfaces=_words(values.get('INTERFACES', '')) or None,
        macvlans=_words(values.get('MACVLANS', '')) or None,
        network_namespace_path=values.get('NETWORK_NAMESPACE_PATH') or None,
    )
    if values.get('COPY_RESOLV_CONF'):
        options['copy_resolv_conf'] = values['COPY_RESOLV_CONF'] == '1'
    for key in ('HOST_ADDRESS', 'LOCAL_ADDRESS', 'HOST_ADDRESS6', 'LOCAL_ADDRESS6', 'LOCAL_MAC_ADDRESS',
                'HOST_BRIDGE'):
        options[OPTION_FOR_KEY[key]] = values.get(key) or None
    veths = _extra_veths.decode(values.get('NIXFLEET_EXTRA_VETHS'))
    options['extra_veths'] = veths or None
    flags = set(_extra_veths.nspawn_flags(veths))
    options.update(_flag_options([w for w in _words(values.get('EXTRA_NSPAWN_FLAGS', '')) if w not in flags]))
    return options


def _words(text, separator=None):
    return [w for w in (text.split(separator) if separator else text.split()) if w.strip()]


def _port_option(spec):
    """nspawn's ``[PROTOCOL:]HOSTPORT[:CONTAINERPORT]``."""
    parts = spec.strip().split(':')
    protocol = parts.pop(0) if parts and parts[0] in PROTOCOLS else 'tcp'
    host_port = int(parts[0]) if parts and DECIMAL.match(parts[0]) else parts[0] if parts else None
    container_port = parts[1] if len(parts) > 1 else host_port
    if isinstance(container_port, str) and DECIMAL.match(container_port):
        container_port = int(container_port)
    return dict(protocol=protocol, host_port=host_port, container_port=container_port)


def _flag_options(words):
    options = dict(bind_mounts=[], additional_capabilities=[], tmpfs=[], ephemeral=False, extra_flags=[])
    for word in words:
        prefix, sep, rest = word.partition('=')
        if prefix in ('--bind', '--bind-ro') and sep and rest.count(':') <= 1:
            host_path, colon, mount_point = rest.partition(':')
            options['bind_mounts'].append(dict(mount_point=mount_point if colon else host_path,
                                               host_path=host_path, read_only=prefix == '--bind-ro'))
        elif prefix == '--capability' and sep:
            options['additional_capabilities'].extend(c for c in rest.split(',') if c)
        elif prefix == '--tmpfs' and sep:
            options['tmpfs'].append(rest)
        elif word == '--ephemeral':
            options['ephemeral'] = True
        else:
            options['extra_flags'].append(word)
    return options
