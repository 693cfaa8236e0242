# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import ipaddress

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.nixfleet.containers.plugins.module_utils._addressing import (
    PoolError,
    PoolExhausted,
    allocate_block,
    parse_pool,
)
from ansible_collections.nixfleet.containers.plugins.module_utils._netlink import plan_addresses
from ansible_collections.nixfleet.containers.plugins.module_utils._network import allocate, NetworkManager

IF = ipaddress.ip_interface
POOLS = {4: (ipaddress.ip_network('10.233.0.0/16'), 24, 'pair')}


def test_pair_mode_gives_dot1_dot2_of_a_block_stable_per_name():
    first = allocate('web', {}, [], [], [], POOLS)
    again = allocate('web', {'other': {'HOST_ADDRESS': '10.233.7.1', 'LOCAL_ADDRESS': '10.233.7.2'}}, [], [], [], POOLS)
    assert first['host_address'] == again['host_address']
    host, local = IF(first['host_address']), IF(first['local_address'])
    assert host.network.prefixlen == 32 and int(local.ip) == int(host.ip) + 1
    assert str(host.ip).endswith('.1') and first['source'] == {'4': 'new'}


def test_a_conf_keeps_its_pair_and_others_are_avoided():
    confs = {'web': {'HOST_ADDRESS': '10.233.1.1', 'LOCAL_ADDRESS': '10.233.1.2'}}
    assert allocate('web', confs, [], [], [], POOLS)['host_address'] == '10.233.1.1'
    taken = allocate('api', {}, [], [], [], POOLS)
    block = IF(taken['host_address'] + '/24').network
    # The same name on a host where its block is used by a conf, a live address or a route moves on.
    for confs, live, routes in (
            ({'x': {'LOCAL_ADDRESS': str(block.network_address + 9) + '/32'}}, [], []),
            ({}, [IF(str(block.network_address + 200) + '/32')], []),
            ({}, [], [ipaddress.ip_network('10.233.0.0/17') if block.network_address < ipaddress.ip_address('10.233.128.0')
                      else ipaddress.ip_network('10.233.128.0/17')])):
        moved = allocate('api', confs, live, routes, [], POOLS)
        assert IF(moved['host_address']).ip not in block


def test_fleet_entries_are_avoided_and_own_entry_is_kept():
    mine = dict(name='web', host='h1', host_address='10.233.40.1', local_address='10.233.40.2')
    assert allocate('web', {}, [], [], [mine], POOLS, owner='h1')['host_address'] == '10.233.40.1'
    assert allocate('web', {}, [], [], [mine], POOLS, owner='h1')['source'] == {'4': 'fleet'}
    # Another host's "web" is not ours: its block is avoided.
    other = allocate('web', {}, [], [], [mine], POOLS, owner='h2')
    assert other['host_address'] != '10.233.40.1'


def test_prefix_mode_and_ipv6():
    pools = {4: (ipaddress.ip_network('10.0.0.0/24'), 30, 'prefix'),
             6: (ipaddress.ip_network('fc00:233::/48'), 64, 'pair')}
    result = allocate('db', {}, [], [], [], pools)
    assert IF(result['host_address']).network.prefixlen == 30
    assert IF(result['local_address6']).network.prefixlen == 128
    assert str(IF(result['host_address6']).ip).endswith('::1')


def test_exhausted_pool_fails_clearly_and_bad_pools_are_refused():
    with pytest.raises(PoolExhausted) as info:
        allocate_block('x', '10.0.0.0/29', 30, 'pair', used_networks=['10.0.0.0/29'])
    assert 'exhausted' in str(info.value)
    with pytest.raises(PoolError):
        parse_pool('10.0.0.0/24', 32)
    with pytest.raises(PoolError):
        parse_pool('not-a-pool', None)


@settings(max_examples=60, deadline=None)
@given(names=st.lists(st.text(alphabet='abcdefghijklmnopqrstuvwxyz0123456789-', min_size=1, max_size=11),
                      min_size=1, max_size=12, unique=True),
       block_prefix=st.integers(min_value=26, max_value=29))
def test_sequential_allocations_are_unique_inside_the_pool_or_exhausted(names, block_prefix):
    """Feeding each allocation back as a fleet entry never hands out an address twice."""
    pool = ipaddress.ip_network('10.240.0.0/24')
    pools = {4: (pool, block_prefix, 'prefix')}
    fleet = []
    usable = (1 << (block_prefix - 24)) - 2
    for name in names:
        try:
            result = allocate(name, {}, [], [], fleet, pools, owner='h')
        except PoolExhausted:
            assert len(fleet) == usable
            continue
        for key in ('host_address', 'local_address'):
            assert IF(result[key]).ip in pool
        fleet.append(result)
    blocks = [IF(r['host_address']).network for r in fleet]
    assert len(set(blocks)) == len(blocks)
    assert len(fleet) == min(len(names), usable)
    # Stable: every name asked again gets what it got.
    for entry in fleet:
        assert allocate(entry['name'], {}, [], [], fleet, pools, owner='h')['host_address'] == entry['host_address']


@given(current=st.sets(st.integers(min_value=1, max_value=30)), desired=st.sets(st.integers(min_value=1, max_value=30)),
       unmanaged=st.sampled_from(['keep', 'remove']))
def test_plan_addresses_reaches_the_desired_set(current, desired, unmanaged):
    cur = set(IF('10.1.0.%d/32' % i) for i in current) | {IF('fe80::1/64')}
    want = set(IF('10.1.0.%d/32' % i) for i in desired)
    add, remove = plan_addresses(cur, want, unmanaged)
    result = (cur - set(remove)) | set(add)
    assert want <= result and IF('fe80::1/64') in result
    if unmanaged == 'remove':
        assert result == want | {IF('fe80::1/64')}
    else:
        assert result == cur | want


def test_same_address_with_another_prefix_is_replaced():
    add, remove = plan_addresses({IF('10.0.0.1/24')}, {IF('10.0.0.1/32')}, 'keep')
    assert add == [IF('10.0.0.1/32')] and remove == [IF('10.0.0.1/24')]


class FakeNetlink(object):
    """Links by name, with their addresses; records what the executor asks of it."""

    def __init__(self, netns=None):
        self.links_ = {'ve-web': dict(name='ve-web', index=7, kind='veth', up=False, mtu=1500, master='')}
        self.addrs = {7: [ipaddress.ip_interface('10.99.0.9/32')]}
        self.calls = []

    def links(self):
        return dict((name, dict(link)) for name, link in self.links_.items())

    def link(self, name):
        return self.links().get(name)

    def addresses(self, index=None, with_index=False):
        return list(self.addrs.get(index, []))

    def routes(self, index=None, with_index=False):
        return []

    def close(self):
        pass

    def create_bridge(self, name):
        self.calls.append(('create_bridge', name))
        self.links_[name] = dict(name=name, index=9, kind='bridge', up=False, mtu=1500, master='')

    def set_link(self, link, **changes):
        self.calls.append(('set_link', link['name']) + tuple(sorted(changes.items())))

    def add_address(self, link, interface):
        self.calls.append(('add_address', link['name'], str(interface)))

    def del_address(self, link, interface):
        self.calls.append(('del_address', link['name'], str(interface)))


def test_the_network_plan_is_steps_with_their_arguments_and_the_diff_its_before_and_after():
    params = dict(interface='ve-web', host_addresses=['10.99.0.1/32'], unmanaged_addresses='remove',
                  bridges=[dict(name='br-t', mtu=1400)])
    check = NetworkManager(params, check_mode=True, netlink_factory=FakeNetlink)
    planned = check.run()
    labels = ['create bridge br-t', 'set mtu 1400 on br-t', 'set br-t up', 'set ve-web up',
              'remove 10.99.0.9/32 from ve-web', 'add 10.99.0.1/32 to ve-web']
    assert (planned['changed'], planned['steps'], planned['actions']) == (True, labels, [])
    assert planned['diff']['before'] == {'br-t': {}, 've-web': dict(
        name='ve-web', kind='veth', state='down', mtu=1500, master='', addresses=['10.99.0.9/32'], routes=[])}
    assert planned['diff']['after']['ve-web']['addresses'] == ['10.99.0.1/32']
    assert planned['diff']['after']['br-t']['mtu'] == 1400
    fakes = []

    def factory(netns):
        fakes.append(FakeNetlink(netns))
        return fakes[-1]

    done = NetworkManager(params, netlink_factory=factory).run()
    assert done['actions'] == labels
    # A bridge made earlier in the run is found by name when its later steps run.
    assert fakes[0].calls == [('create_bridge', 'br-t'), ('set_link', 'br-t', ('mtu', 1400)),
                              ('set_link', 'br-t', ('state', 'up')), ('set_link', 've-web', ('state', 'up')),
                              ('del_address', 've-web', '10.99.0.9/32'), ('add_address', 've-web', '10.99.0.1/32')]
