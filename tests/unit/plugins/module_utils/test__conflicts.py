# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function
__metaclass__ = type

"""Conflict rules between one container's conf and the others (pure)."""

from ansible_collections.nixfleet.containers.plugins.module_utils._conflicts import conflicts


def veth(host, local, ports=''):
    return dict(PRIVATE_NETWORK='1', HOST_ADDRESS=host, LOCAL_ADDRESS=local, HOST_PORT=ports)


def test_a_local_address_of_another_container_is_a_conflict_naming_both():
    assert conflicts('b', veth('10.0.9.1', '10.0.0.2'), {'a': veth('10.0.0.1', '10.0.0.2')}) == [
        'local_address 10.0.0.2 of container b is already the local_address of container a']


def test_a_shared_host_address_is_not_a_conflict():
    assert conflicts('b', veth('10.0.0.1', '10.0.0.3'), {'a': veth('10.0.0.1', '10.0.0.2')}) == []


def test_a_host_address_that_is_another_local_address_is_a_conflict():
    assert conflicts('b', veth('10.0.0.2', '10.0.0.3'), {'a': veth('10.0.0.1', '10.0.0.2/24')})


def test_host_ports_per_protocol():
    mine = veth('10.0.1.1', '10.0.1.2', 'tcp:80:80,udp:53')
    assert conflicts('b', mine, {'a': veth('10.0.0.1', '10.0.0.2', '53')}) == []
    assert conflicts('b', mine, {'a': veth('10.0.0.1', '10.0.0.2', 'udp:53:53')}) == [
        'host port 53/udp of container b is already forwarded by container a']


def test_host_network_and_going_containers_are_skipped():
    mine = veth('10.0.1.1', '10.0.0.2')
    assert conflicts('b', mine, {'a': dict(PRIVATE_NETWORK='0', LOCAL_ADDRESS='10.0.0.2'), 'c': None}) == []


def test_the_hosts_own_addresses():
    mine = veth('10.0.1.1', '192.168.1.5')
    live = [('eth0', '192.168.1.5'), ('ve-a', '10.0.1.1')]
    assert conflicts('b', mine, {}, live) == [
        "local_address 192.168.1.5 of container b is already the host's own address (on eth0)"]
    assert conflicts('b', veth('192.168.1.5', '10.0.1.2'), {}, live) == [
        "host_address 192.168.1.5 of container b is already the host's own address (on eth0)"]


def test_extra_veths_and_moved_interfaces_belong_to_one_container():
    mine = dict(PRIVATE_NETWORK='1', NIXFLEET_EXTRA_VETHS='veth1,hostBridge=br1 veth2', INTERFACES='eth1')
    others = {'a': dict(PRIVATE_NETWORK='1', NIXFLEET_EXTRA_VETHS='veth2'),
              'c': dict(PRIVATE_NETWORK='1', INTERFACES='eth2 eth1'),
              'd': dict(PRIVATE_NETWORK='1', NIXFLEET_EXTRA_VETHS='veth3', INTERFACES='eth3')}
    assert conflicts('b', mine, others) == [
        'extra veth veth2 of container b is already the extra veth veth2 of container a',
        'interface eth1 of container b is already the interface eth1 of container c']


def test_a_moved_interface_is_no_macvlan_parent_of_another_container():
    others = {'a': dict(PRIVATE_NETWORK='1', MACVLANS='eth1'),
              'c': dict(PRIVATE_NETWORK='1', INTERFACES='eth2')}
    assert conflicts('b', dict(PRIVATE_NETWORK='1', INTERFACES='eth1'), others) == [
        'interface eth1 of container b is already the macvlan parent eth1 of container a']
    assert conflicts('b', dict(PRIVATE_NETWORK='1', MACVLANS='eth2 eth1'), others) == [
        'macvlan parent eth2 of container b is already the interface eth2 of container c']
    # Macvlans of several containers on one interface are what bridge mode is for.
    assert conflicts('b', dict(PRIVATE_NETWORK='1', MACVLANS='eth1'), others) == []
