# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Host-side container networking over netlink (pyroute2): links, addresses, routes, bridges.

This module_util is PRIVATE to the collection: it may change without notice.

What NixOS's container unit does in postStart (facts §5.6, §5.8): bring ``ve-NAME`` up, put
HOST_ADDRESS (and HOST_ADDRESS6) on it and route LOCAL_ADDRESS (and LOCAL_ADDRESS6) through it;
with a bridge, ``vb-NAME`` is enslaved and gets no address. :func:`plan_interface` and
:func:`plan_bridge` are pure (state in, steps out), so the decisions are unit-tested without
a kernel; :class:`Netlink` reads and applies them with pyroute2 (0.7 from Debian 12's
python3-pyroute2 up to 0.9), optionally inside a named network namespace.

Device routes get scope link (253) as iproute2 gives them: pyroute2's default, universe,
makes a later default route through that address fail with "Network is unreachable"
(lab-recipes §5).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import ipaddress
import os
import socket
import traceback

from ansible_collections.nixfleet.containers.plugins.module_utils._errors import NixfleetError

PYROUTE2_IMPORT_ERROR = None
try:
    from pyroute2 import IPRoute, NetNS
except ImportError:
    IPRoute = NetNS = None
    PYROUTE2_IMPORT_ERROR = traceback.format_exc()

IFF_UP = 0x1
SCOPE_LINK = 253
# RT_SCOPE_NOWHERE: on delete the kernel takes it as "any scope" (as iproute2 sends it).
SCOPE_ANY = 255
MAIN_TABLE = 254
NETNS_DIR = '/run/netns'


def _unpadded(value):
    """The text of an address as given: padding is refused, not trimmed (a typo, or an injection)."""
    text = str(value)
    if text != text.strip():
        raise ValueError('surrounding white space')
    return text


class NetlinkError(NixfleetError):
    """A netlink operation failed; the message says which."""


def normalise_address(value, where):
    """An ``ip_interface``; a bare address gets /32 (IPv4) or /128 (IPv6), as the unit adds it."""
    try:
        return ipaddress.ip_interface(_unpadded(value))
    except ValueError:
        raise ValueError('%s: %r is not an IP address (with an optional /prefix)' % (where, value))


def normalise_route(value, where):
    """An ``ip_network`` for a route destination; a bare address is a host route."""
    try:
        return ipaddress.ip_network(_unpadded(value), strict=False)
    except ValueError:
        raise ValueError('%s: %r is not an IP address or CIDR' % (where, value))


def _is_link_local(interface):
    return interface.version == 6 and interface.ip.is_link_local


def plan_addresses(current, desired, unmanaged):
    """``(add, remove)`` sorted lists; ``unmanaged`` = keep | remove (IPv6 link-local stays)."""
    current = set(current)
    desired = set(desired)
    add = sorted(desired - current, key=_sort_key)
    remove = []
    if unmanaged == 'remove':
        remove = sorted((a for a in current - desired if not _is_link_local(a)), key=_sort_key)
    else:
        # Same address with another prefix: replace it (the kernel would keep both).
        wanted_ips = set(a.ip for a in desired)
        remove = sorted((a for a in current - desired if a.ip in wanted_ips), key=_sort_key)
    return add, remove


def _sort_key(value):
    return (value.version, str(value))


def link_view(link, addresses, routes):
    """What the diff shows of one link."""
    if link is None:
        return {}
    return dict(name=link['name'], kind=link.get('kind') or '', state='up' if link['up'] else 'down',
                mtu=link['mtu'], master=link.get('master') or '',
                addresses=[str(a) for a in sorted(addresses, key=_sort_key) if not _is_link_local(a)],
                routes=[str(r) for r in sorted(routes, key=_sort_key)])


class Netlink(object):
    """pyroute2 in the host's namespace or in ``/run/netns/NETNS``."""

    def __init__(self, netns=None):
        if IPRoute is None:
            raise NetlinkError('pyroute2 is not installed')
        self.netns = netns
        if netns:
            path = os.path.join(NETNS_DIR, netns)
            if not os.path.exists(path):
                raise NetlinkError('netns: %s does not exist (no %s)' % (netns, path))
            self.ipr = NetNS(netns, flags=0)
        else:
            self.ipr = IPRoute()

    def close(self):
        self.ipr.close()

    # ---- reading ------------------------------------------------------------------------
    def _link_dict(self, msg, names):
        info = msg.get_attr('IFLA_LINKINFO')
        kind = info.get_attr('IFLA_INFO_KIND') if info is not None else None
        master = msg.get_attr('IFLA_MASTER')
        return dict(index=msg['index'], name=msg.get_attr('IFLA_IFNAME'), kind=kind,
                    up=bool(msg['flags'] & IFF_UP), mtu=msg.get_attr('IFLA_MTU'),
                    master=names.get(master) if master else None)

    def links(self):
        messages = self.ipr.get_links()
        names = dict((m['index'], m.get_attr('IFLA_IFNAME')) for m in messages)
        return dict((names[m['index']], self._link_dict(m, names)) for m in messages)

    def link(self, name):
        return self.links().get(name)

    def addresses(self, index=None, with_index=False):
        """ip_interface objects (of link ``index``); ``(index, address)`` pairs with_index."""
        out = []
        for msg in self.ipr.get_addr():
            if index is not None and msg['index'] != index:
                continue
            address = msg.get_attr('IFA_LOCAL') if msg['family'] == socket.AF_INET else None
            address = address or msg.get_attr('IFA_ADDRESS')
            interface = ipaddress.ip_interface('%s/%d' % (address, msg['prefixlen']))
            out.append((msg['index'], interface) if with_index else interface)
        return out

    def routes(self, index=None, with_index=False):
        """Destinations of the main table's routes (through ``index`` when given);
        ``(oif, destination)`` pairs with_index."""
        out = []
        for family in (socket.AF_INET, socket.AF_INET6):
            for msg in self.ipr.get_routes(family=family):
                if msg['table'] != MAIN_TABLE or msg.get_attr('RTA_TABLE') not in (None, MAIN_TABLE):
                    continue
                if index is not None and msg.get_attr('RTA_OIF') != index:
                    continue
                dst = msg.get_attr('RTA_DST')
                if dst is None:
                    continue
                network = ipaddress.ip_network('%s/%d' % (dst, msg['dst_len']), strict=False)
                if network.version == 6 and (network.network_address.is_link_local
                                             or network.network_address.is_multicast):
                    continue
                out.append((msg.get_attr('RTA_OIF'), network) if with_index else network)
        return out

    # ---- changing -----------------------------------------------------------------------
    def _do(self, what, function, *args, **kwargs):
        try:
            return function(*args, **kwargs)
        except Exception as e:  # pyroute2's NetlinkError and OSError alike
            raise NetlinkError('%s failed: %s' % (what, e))

    def create_bridge(self, name):
        self._do('creating bridge %s' % name, self.ipr.link, 'add', ifname=name, kind='bridge')

    def delete_link(self, link):
        self._do('deleting %s' % link['name'], self.ipr.link, 'del', index=link['index'])

    def set_link(self, link, **changes):
        """``state='up'|'down'``, ``mtu=N``, ``master=index`` (0 frees it)."""
        self._do('setting %s on %s' % (', '.join('%s=%s' % i for i in sorted(changes.items())), link['name']),
                 self.ipr.link, 'set', index=link['index'], **changes)

    def add_address(self, link, interface):
        self._do('adding %s to %s' % (interface, link['name']), self.ipr.addr, 'add', index=link['index'],
                 address=str(interface.ip), prefixlen=interface.network.prefixlen)

    def del_address(self, link, interface):
        self._do('removing %s from %s' % (interface, link['name']), self.ipr.addr, 'del',
                 index=link['index'], address=str(interface.ip), prefixlen=interface.network.prefixlen)

    def add_route(self, link, network):
        self._do('adding the route to %s via %s' % (network, link['name']), self.ipr.route, 'add',
                 dst=str(network.network_address), dst_len=network.prefixlen, oif=link['index'],
                 family=socket.AF_INET if network.version == 4 else socket.AF_INET6, scope=SCOPE_LINK)

    def del_route(self, link, network):
        self._do('removing the route to %s via %s' % (network, link['name']), self.ipr.route, 'del',
                 dst=str(network.network_address), dst_len=network.prefixlen, oif=link['index'],
                 family=socket.AF_INET if network.version == 4 else socket.AF_INET6, scope=SCOPE_ANY)
