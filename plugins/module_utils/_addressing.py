# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""IPv4 address pairs for containers: the CLI's 10.233.N.1/.2 rule, without its blind spots.

This module_util is PRIVATE to the collection: it may change without notice.

``nixos-container create`` (facts §4) picks the first N in 1..254 whose 10.233.N.1 and
10.233.N.2 it has not seen, but it only sees conf lines of the exact form
``HOST_ADDRESS=<digits and dots>`` (facts P-3): values with a /prefix, live interfaces and
routes are invisible to it. :func:`allocate_pair` keeps the order of the rule and looks at
everything; :func:`cli_allocate_pair` reproduces the CLI exactly, for comparison.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import ipaddress
import re

POOL_PREFIX = '10.233'
FIRST_SUBNET = 1
LAST_SUBNET = 254
ADDRESS_KEYS = ('HOST_ADDRESS', 'LOCAL_ADDRESS')


class PoolExhausted(ValueError):
    """No 10.233.N.1/10.233.N.2 pair is free."""


def _pair(subnet):
    return (ipaddress.IPv4Address('%s.%d.1' % (POOL_PREFIX, subnet)),
            ipaddress.IPv4Address('%s.%d.2' % (POOL_PREFIX, subnet)))


def _ipv4_interface(value):
    """IPv4Interface of ``ADDRESS[/PREFIX]`` (text or ipaddress object), or None."""
    if isinstance(value, ipaddress.IPv4Interface):
        return value
    if isinstance(value, ipaddress.IPv4Address):
        return ipaddress.IPv4Interface(value)
    if not isinstance(value, str) or not value:
        return None
    try:
        return ipaddress.IPv4Interface(value.strip())
    except ValueError:
        return None                     # IPv6 or junk: not part of the IPv4 pool


def collect_used_ipv4(conf_values_iterable, live=()):
    """Every IPv4 address in use: HOST_ADDRESS/LOCAL_ADDRESS of each conf, prefix or not,
    plus ``live`` addresses (text like ``10.0.0.1/24`` or ipaddress objects, e.g. from
    ``ip -j addr`` and route destinations). Returns a set of ``IPv4Address``.
    """
    used = set()
    for values in conf_values_iterable:
        for key in ADDRESS_KEYS:
            interface = _ipv4_interface(values.get(key))
            if interface is not None:
                used.add(interface.ip)
    for value in live:
        interface = _ipv4_interface(value)
        if interface is not None:
            used.add(interface.ip)
    return used


def collect_used_ipv4_networks(conf_values_iterable):
    """The networks claimed by addresses written with a prefix shorter than /32.

    ``LOCAL_ADDRESS=10.233.3.2/24`` makes the unit route all of 10.233.3.0/24 to that
    container, so no other pair should be taken from it.
    """
    networks = set()
    for values in conf_values_iterable:
        for key in ADDRESS_KEYS:
            interface = _ipv4_interface(values.get(key))
            if interface is not None and interface.network.prefixlen < 32:
                networks.add(interface.network)
    return networks


def allocate_pair(used, used_networks=()):
    """``(host, local)`` = (10.233.N.1, 10.233.N.2) for the first N in 1..254 where neither
    address is in ``used`` nor inside any of ``used_networks``. Raises PoolExhausted.
    """
    used = set(_ipv4_interface(value).ip for value in used if _ipv4_interface(value) is not None)
    networks = list(used_networks)
    for subnet in range(FIRST_SUBNET, LAST_SUBNET + 1):
        pair = _pair(subnet)
        if any(address in used or any(address in net for net in networks) for address in pair):
            continue
        return pair
    raise PoolExhausted('out of IP addresses: every pair %s.N.1/%s.N.2 (N = %d..%d) is in use; '
                        'give host_address and local_address explicitly'
                        % (POOL_PREFIX, POOL_PREFIX, FIRST_SUBNET, LAST_SUBNET))


_CLI_HOST_LINE = re.compile(r'^HOST_ADDRESS=([0-9.]+)$', re.MULTILINE)
_CLI_LOCAL_LINE = re.compile(r'^LOCAL_ADDRESS=([0-9.]+)$', re.MULTILINE)


def cli_allocate_pair(conf_texts):
    """What ``nixos-container create`` would pick, quirks included (facts §4).

    Only the first ``HOST_ADDRESS=``/``LOCAL_ADDRESS=`` line of each text counts, and only
    when it is digits and dots and nothing else; addresses compare as text. An empty conf
    makes the CLI die, and this raise ValueError.
    """
    used = set()
    for text in conf_texts:
        if not text:
            raise ValueError('an empty conf file makes nixos-container create die ("Died at ...")')
        for pattern in (_CLI_HOST_LINE, _CLI_LOCAL_LINE):
            match = pattern.search(text)
            if match:
                used.add(match.group(1))
    for subnet in range(FIRST_SUBNET, LAST_SUBNET + 1):
        host, local = _pair(subnet)
        if str(host) not in used and str(local) not in used:
            return host, local
    raise PoolExhausted('out of IP addresses')
