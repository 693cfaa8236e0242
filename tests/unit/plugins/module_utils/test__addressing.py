# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ipaddress import IPv4Address, IPv4Interface, IPv4Network

import pytest

from ansible_collections.nixfleet.containers.plugins.module_utils._addressing import (
    PoolExhausted,
    allocate_pair,
    cli_allocate_pair,
    collect_used_ipv4,
    collect_used_networks,
)
from ansible_collections.nixfleet.containers.plugins.module_utils._envfile import parse_conf


def pair(n):
    return IPv4Address('10.233.%d.1' % n), IPv4Address('10.233.%d.2' % n)


def conf_text(host, local):
    return 'PRIVATE_NETWORK=1\nHOST_ADDRESS=%s\nLOCAL_ADDRESS=%s\nHOST_BRIDGE=\nHOST_PORT=\nAUTO_START=0\n' % (host, local)


def test_first_pair_on_an_empty_host():
    assert allocate_pair(set()) == pair(1)
    assert cli_allocate_pair([]) == pair(1)


def test_lowest_free_subnet_first_and_reuse_of_holes():
    texts = [conf_text('10.233.1.1', '10.233.1.2'), conf_text('10.233.3.1', '10.233.3.2')]
    used = collect_used_ipv4(parse_conf(t) for t in texts)
    assert allocate_pair(used) == pair(2)
    assert cli_allocate_pair(texts) == pair(2)


def test_either_address_blocks_the_subnet():
    assert allocate_pair({IPv4Address('10.233.1.2')}) == pair(2)
    assert allocate_pair({IPv4Address('10.233.1.1'), IPv4Address('10.233.2.2')}) == pair(3)
    # Other host parts of 10.233.N do not block N (the CLI's rule, kept).
    assert allocate_pair({IPv4Address('10.233.1.3')}) == pair(1)


def test_prefixed_values_count_for_us_but_not_for_the_cli():
    """facts P-3 / §4: LOCAL_ADDRESS=10.233.1.2/24 did not stop the CLI reusing 10.233.1.x."""
    texts = [conf_text('10.233.1.1/24', '10.233.1.2/24')]
    assert cli_allocate_pair(texts) == pair(1)              # the CLI collides
    used = collect_used_ipv4(parse_conf(t) for t in texts)
    assert used == {IPv4Address('10.233.1.1'), IPv4Address('10.233.1.2')}
    assert allocate_pair(used) == pair(2)


def test_used_networks_block_their_subnets():
    confs = [{'HOST_ADDRESS': '10.233.5.1/24', 'LOCAL_ADDRESS': '10.233.4.9/23'},
             {'LOCAL_ADDRESS': '10.233.1.2'}]
    networks = {IPv4Network('10.233.5.0/24'), IPv4Network('10.233.4.0/23')}
    used = collect_used_ipv4(confs)
    assert allocate_pair(used) == pair(2)
    assert allocate_pair(used | {IPv4Address('10.233.2.1'), IPv4Address('10.233.3.2')}, networks) == pair(6)


def test_live_addresses_count():
    used = collect_used_ipv4([], live=['10.233.1.1/32', IPv4Address('10.233.2.2'),
                                       IPv4Interface('10.233.3.1/24'), 'fe80::1/64', 'junk', ''])
    assert used == {IPv4Address('10.233.1.1'), IPv4Address('10.233.2.2'), IPv4Address('10.233.3.1')}
    assert allocate_pair(used) == pair(4)


def test_ipv6_junk_and_empty_values_are_ignored():
    confs = [{'HOST_ADDRESS': '', 'LOCAL_ADDRESS': 'not-an-address'},
             {'HOST_ADDRESS6': 'fc00::1', 'LOCAL_ADDRESS6': 'fc00::2'}, {}]
    assert collect_used_ipv4(confs) == set()


def test_the_cli_only_sees_exact_lines():
    texts = [
        'HOST_ADDRESS=10.233.1.1 \nLOCAL_ADDRESS=10.233.1.2\n',     # trailing blank: not seen
        'HOST_ADDRESS="10.233.2.1"\n',                               # quoted: not seen
        ' HOST_ADDRESS=10.233.3.1\n',                                # indented: not seen
        'HOST_ADDRESS=10.233.4.1\nHOST_ADDRESS=10.233.1.1\n',        # only the first line counts
    ]
    # 10.233.1.2 is seen (exact line), so N=1 is taken; 2 and 3 look free to the CLI.
    assert cli_allocate_pair(texts) == pair(2)
    used = collect_used_ipv4(parse_conf(t) for t in texts)
    # systemd's reading sees every one of them (last assignment wins).
    assert used == {IPv4Address(a) for a in ('10.233.1.1', '10.233.1.2', '10.233.2.1', '10.233.3.1')}
    assert allocate_pair(used) == pair(4)


def test_the_cli_compares_text_not_addresses():
    # A leading zero is the same address to systemd's readers but another string to the CLI.
    assert cli_allocate_pair(['HOST_ADDRESS=10.233.01.1\n']) == pair(1)


def test_empty_conf_kills_the_cli():
    with pytest.raises(ValueError) as error:
        cli_allocate_pair([conf_text('10.233.1.1', '10.233.1.2'), ''])
    assert 'Died' in str(error.value)


def test_pool_exhausted():
    used = set()
    for n in range(1, 255):
        used.add(pair(n)[n % 2])        # one address of every pair is enough to block it
    with pytest.raises(PoolExhausted) as error:
        allocate_pair(used)
    assert isinstance(error.value, ValueError)
    assert 'out of IP addresses' in str(error.value)
    assert 'host_address' in str(error.value)
    # The last subnet is still used; 10.233.0.x and 10.233.255.x never are.
    used.discard(pair(254)[0])
    assert allocate_pair(used) == pair(254)


def test_cli_pool_exhausted():
    texts = [conf_text(*map(str, pair(n))) for n in range(1, 255)]
    with pytest.raises(PoolExhausted):
        cli_allocate_pair(texts)
    assert cli_allocate_pair(texts[:-1]) == pair(254)


def test_prefixed_addresses_and_on_link_routes_are_subnets_in_use():
    confs = [dict(HOST_BRIDGE='br0', LOCAL_ADDRESS='10.233.2.5/24'), dict(HOST_ADDRESS='10.233.4.1', LOCAL_ADDRESS='10.233.4.2/32')]
    networks = collect_used_networks(confs, live=['10.233.1.0/24', '10.233.5.0/31', 'fc00::/64', 'junk'])
    assert networks == {IPv4Network('10.233.1.0/24'), IPv4Network('10.233.2.0/24')}
    assert allocate_pair(set(), networks) == pair(3)
