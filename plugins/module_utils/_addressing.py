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

import hashlib
import ipaddress
import re

from ansible_collections.nixfleet.containers.plugins.module_utils._errors import InputError

POOL_PREFIX = '10.233'
FIRST_SUBNET = 1
LAST_SUBNET = 254
ADDRESS_KEYS = ('HOST_ADDRESS', 'LOCAL_ADDRESS')


class PoolExhausted(InputError):
    """No 10.233.N.1/10.233.N.2 pair is free."""


def _pair(subnet):
    return (ipaddress.IPv4Address('%s.%d.1' % (POOL_PREFIX, subnet)),
            ipaddress.IPv4Address('%s.%d.2' % (POOL_PREFIX, subnet)))


# Built once: constructing 508 addresses on every allocation was most of its cost.
_PAIRS = tuple(_pair(subnet) for subnet in range(FIRST_SUBNET, LAST_SUBNET + 1))


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


def _ipv4_address(value):
    """IPv4Address of a used value; addresses pass through unparsed (the module's claimed set
    holds them, and parsing each again on every allocation made a list of them quadratic)."""
    if isinstance(value, ipaddress.IPv4Address):
        return value
    interface = _ipv4_interface(value)
    return None if interface is None else interface.ip


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


def collect_used_networks(conf_values_iterable, live=()):
    """The IPv4 subnets in use: those of HOST_ADDRESS/LOCAL_ADDRESS values with a prefix (a
    bridged container's segment), plus ``live`` networks (the host's on-link routes). A /31 or
    /32 is a point-to-point address, not a subnet. Returns a set of ``IPv4Network``."""
    found = set()
    values = [values.get(key) for values in conf_values_iterable for key in ADDRESS_KEYS] + list(live)
    for value in values:
        interface = _ipv4_interface(value)
        if interface is not None and interface.network.prefixlen < 31:
            found.add(interface.network)
    return found


def allocate_pair(used, used_networks=()):
    """``(host, local)`` = (10.233.N.1, 10.233.N.2) for the first N in 1..254 where neither
    address is in ``used`` nor inside any of ``used_networks``. Raises PoolExhausted.
    """
    used = set(address for address in map(_ipv4_address, used) if address is not None)
    networks = list(used_networks)
    for pair in _PAIRS:
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


# ---- pools (nixos_container_network's allocation) -------------------------------------------
#
# A pool is a CIDR split into blocks of one prefix length (10.233.0.0/16 into /24s by default,
# as the CLI's 10.233.N.x). A container gets block N's first two addresses: host and local,
# either as a /32 (/128) pair (mode "pair", the nixos-container layout) or with the block's
# prefix (mode "prefix"). The first block tried is derived from a hash of the container name,
# so a name keeps its block no matter in which order containers come and go; a name that
# already holds addresses (its conf file, or its entry in the fleet list) keeps those.

class PoolError(InputError):
    """A pool that cannot be used as given."""


def parse_pool(cidr, block_prefix, where='pool'):
    """``(network, block_prefix)`` of a pool, checked: the blocks must hold two addresses."""
    try:
        network = ipaddress.ip_network(str(cidr).strip(), strict=False)
    except ValueError:
        raise PoolError('%s: %r is not a CIDR range' % (where, cidr))
    if block_prefix is None:
        block_prefix = 24 if network.version == 4 else 64
    if not network.prefixlen <= block_prefix <= network.max_prefixlen - 1:
        raise PoolError('%s: blocks of /%d do not fit %s (the prefix must be between /%d and /%d)'
                        % (where, block_prefix, network, network.prefixlen, network.max_prefixlen - 1))
    return network, block_prefix


def _block_count(network, block_prefix):
    return 1 << (block_prefix - network.prefixlen)


def _block(network, block_prefix, index):
    size = 1 << (network.max_prefixlen - block_prefix)
    first = int(network.network_address) + index * size
    return ipaddress.ip_network((first, block_prefix))


def _skipped(network, block_prefix, index):
    """The CLI never uses 10.233.0.x nor 10.233.255.x: skip the pool's first and last block
    (they hold its network and broadcast addresses) when there are more than two."""
    count = _block_count(network, block_prefix)
    return count > 2 and network.version == 4 and index in (0, count - 1)


def block_addresses(block, mode):
    """``(host, local)`` interfaces of a block: its .1 and .2 (::1 and ::2)."""
    base = int(block.network_address)
    prefix = block.max_prefixlen if mode == 'pair' else block.prefixlen
    if mode == 'prefix' and block.num_addresses < 4 and block.version == 4:
        raise PoolError('mode prefix needs blocks of at least 4 addresses (/30), got /%d' % block.prefixlen)
    make = ipaddress.ip_interface
    return (make('%s/%d' % (ipaddress.ip_address(base + 1), prefix)),
            make('%s/%d' % (ipaddress.ip_address(base + 2), prefix)))


def name_start(name, count):
    """Where a name's probe starts: a stable hash, the same on every host and Python."""
    digest = hashlib.sha256(name.encode('utf-8')).hexdigest()
    return int(digest[:16], 16) % count


def _interfaces(values):
    out = []
    for value in values:
        if value is None or value == '':
            continue
        try:
            out.append(ipaddress.ip_interface(str(value).strip()))
        except ValueError:
            continue
    return out


def block_is_free(block, used_interfaces, used_networks):
    """No used address inside the block, and no used network overlapping it."""
    for interface in used_interfaces:
        if interface.version == block.version and interface.ip in block:
            return False
    for network in used_networks:
        if network.version == block.version and network.overlaps(block):
            return False
    return True


def allocate_block(name, pool, block_prefix, mode, used_addresses=(), used_networks=()):
    """``(block, host, local)`` for ``name`` from the pool; raises PoolExhausted.

    ``used_addresses``: addresses (with or without prefix) that may not fall into the block;
    ``used_networks``: networks the block may not overlap (routes, prefixed conf values,
    live addresses' subnets).
    """
    network, block_prefix = parse_pool(pool, block_prefix)
    used_interfaces = _interfaces(used_addresses)
    networks = [n if isinstance(n, (ipaddress.IPv4Network, ipaddress.IPv6Network))
                else ipaddress.ip_network(str(n), strict=False) for n in used_networks]
    count = _block_count(network, block_prefix)
    start = name_start(name, count)
    # Probing is linear from the name's start; a pool with more than a million blocks is only
    # probed that far (it is never that full in practice).
    limit = min(count, 1 << 20)
    for step in range(limit):
        index = (start + step) % count
        if _skipped(network, block_prefix, index):
            continue
        block = _block(network, block_prefix, index)
        if block_is_free(block, used_interfaces, networks):
            host, local = block_addresses(block, mode)
            return block, host, local
    raise PoolExhausted('pool %s is exhausted: no free /%d block for %r (%d blocks, all used or '
                        'colliding with conf files, live addresses or the fleet allocations)'
                        % (network, block_prefix, name, count))
