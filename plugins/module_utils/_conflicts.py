# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Conflicts between one container's conf and the rest of the host, found before any change.

This module_util is PRIVATE to the collection: it may change without notice.

Pure: the caller reads the other confs and the host's live addresses. The rules (facts §4,
§5.6): a container's local address lives in its own network namespace and is routed to it
from the host, so it may be nobody else's address (no other container's host or local
address, none of the host's own); host addresses may be shared between veth containers (each
sits on its own ve-NAME link, as the NixOS manual's examples do) but not be another
container's local address; a forwarded host port (nspawn --port) belongs to one container; a
host interface moved into a container is nobody's macvlan parent.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import ipaddress

from ansible_collections.nixfleet.containers.plugins.module_utils import _extra_veths
from ansible_collections.nixfleet.containers.plugins.module_utils._conf import parse_port_spec

ADDRESS_OPTIONS = (('HOST_ADDRESS', 'host_address'), ('LOCAL_ADDRESS', 'local_address'),
                   ('HOST_ADDRESS6', 'host_address6'), ('LOCAL_ADDRESS6', 'local_address6'))


def _address(value):
    if not value:
        return None
    try:
        return ipaddress.ip_interface(u'%s' % value.strip()).ip
    except ValueError:
        return None


def _private(conf):
    return str(conf.get('PRIVATE_NETWORK', '0')).strip() == '1'


def addresses(conf):
    """[(option, address)] of a private-network conf (prefixes dropped); [] on the host network."""
    if not _private(conf):
        return []
    found = []
    for key, option in ADDRESS_OPTIONS:
        address = _address(conf.get(key))
        if address is not None:
            found.append((option, address))
    return found


def host_ports(conf):
    """{(protocol, host_port)} a private-network conf forwards."""
    if not _private(conf) or not conf.get('HOST_PORT'):
        return set()
    ports = set()
    for item in conf['HOST_PORT'].split(','):
        try:
            ports.add(parse_port_spec(item.strip())[:2])
        except ValueError:
            continue
    return ports


def host_links(conf):
    """{host interface name: what claims it}: the host ends of its extra veths and the host
    interfaces it moves in (one container at a time: nspawn fails to start the second)."""
    links = dict((v['name'], 'extra veth') for v in _extra_veths.decode(conf.get('NIXFLEET_EXTRA_VETHS')))
    links.update((i, 'interface') for i in (conf.get('INTERFACES') or '').split())
    return links


def macvlan_parents(conf):
    """{host interface name: 'macvlan parent'} of its macvlans. Containers may share a parent (bridge
    mode), but not with a container that moves it in: it is gone from the host while that one runs."""
    return dict((i, 'macvlan parent') for i in (conf.get('MACVLANS') or '').split())


def _link_clashes(conf, other_conf):
    """[(kind, link, other kind)]: a host interface claimed by both, or moved in by one and a macvlan
    parent of the other."""
    mine, theirs = host_links(conf), host_links(other_conf)
    found = [(mine[link], link, theirs[link]) for link in sorted(mine) if link in theirs]
    for own, other in ((mine, macvlan_parents(other_conf)), (macvlan_parents(conf), theirs)):
        found += [(own[link], link, other[link]) for link in sorted(own)
                  if link in other and 'interface' in (own[link], other[link])]
    return found


def _clash(option, other_option):
    """Whether option of one container and other_option of another may not hold the same address."""
    return option.startswith('local') or other_option.startswith('local')


def conflicts(name, conf, others, live=()):
    """Messages for every conflict of container NAME's CONF.

    others: {other name: its conf, or None when it goes} (what each will have after this run);
    live: [(ifname, address text)] of the host's interfaces.
    """
    messages = []
    mine = addresses(conf)
    for other in sorted(others):
        if other == name or others[other] is None:
            continue
        theirs = addresses(others[other])
        for option, address in mine:
            for other_option, other_address in theirs:
                if address == other_address and _clash(option, other_option):
                    messages.append('%s %s of container %s is already the %s of container %s'
                                    % (option, address, name, other_option, other))
        for protocol, port in sorted(host_ports(conf) & host_ports(others[other])):
            messages.append('host port %d/%s of container %s is already forwarded by container %s'
                            % (port, protocol, name, other))
        for kind, link, other_kind in _link_clashes(conf, others[other]):
            messages.append('%s %s of container %s is already the %s %s of container %s'
                            % (kind, link, name, other_kind, link, other))
    # Other containers' ve-/vb- links carry their host addresses: the confs above cover them.
    for option, address in mine:
        for ifname, text in live:
            if not ifname.startswith(('ve-', 'vb-')) and _address(text) == address:
                messages.append("%s %s of container %s is already the host's own address (on %s)"
                                % (option, address, name, ifname))
    return messages
