# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json

import pytest

from ansible_collections.nixfleet.containers.plugins.module_utils import _iptables
from ansible_collections.nixfleet.containers.plugins.module_utils._nft import (
    NatSpecError,
    batch,
    nat_spec,
    parse_destination,
    parse_listing,
    parse_port_range,
    render_tables,
    ruleset_text,
)

BASE = dict(external_interface='eth0', internal_interfaces=['ve-+'],
            forwards=[dict(proto='tcp', host_port=8080, destination='10.233.1.2:80')])

# What `nft -j list table ip nixfleet_nat` printed (nftables 1.0.6) after loading BASE.
LISTING = json.dumps({'nftables': [
    {'metainfo': {'version': '1.0.6', 'json_schema_version': 1}},
    {'table': {'family': 'ip', 'name': 'nixfleet_nat', 'handle': 2}},
    {'chain': {'family': 'ip', 'table': 'nixfleet_nat', 'name': 'pre', 'handle': 1, 'type': 'nat',
               'hook': 'prerouting', 'prio': -100, 'policy': 'accept'}},
    {'chain': {'family': 'ip', 'table': 'nixfleet_nat', 'name': 'out', 'handle': 2, 'type': 'nat',
               'hook': 'output', 'prio': -100, 'policy': 'accept'}},
    {'chain': {'family': 'ip', 'table': 'nixfleet_nat', 'name': 'post', 'handle': 3, 'type': 'nat',
               'hook': 'postrouting', 'prio': 100, 'policy': 'accept'}},
    {'rule': {'family': 'ip', 'table': 'nixfleet_nat', 'chain': 'pre', 'handle': 4,
              'comment': 'forward tcp 8080 -> 10.233.1.2:80', 'expr': [
                  {'match': {'op': '==', 'left': {'meta': {'key': 'iifname'}}, 'right': 'eth0'}},
                  {'match': {'op': '==', 'left': {'payload': {'protocol': 'tcp', 'field': 'dport'}}, 'right': 8080}},
                  {'dnat': {'addr': '10.233.1.2', 'port': 80}}]}},
    {'rule': {'family': 'ip', 'table': 'nixfleet_nat', 'chain': 'post', 'handle': 5,
              'comment': 'masquerade from ve-*', 'expr': [
                  {'match': {'op': '==', 'left': {'meta': {'key': 'iifname'}}, 'right': 've-*'}},
                  {'match': {'op': '==', 'left': {'meta': {'key': 'oifname'}}, 'right': 'eth0'}},
                  {'masquerade': None}]}},
]})


def test_rendered_table_equals_what_nft_prints_back():
    """The comparison that decides idempotence: rendered == parsed listing, handles ignored."""
    assert render_tables(nat_spec(BASE)) == {'ip': parse_listing(LISTING, 'nixfleet_nat')}


def test_plus_wildcard_is_written_with_a_star_for_nftables_and_plus_for_iptables():
    spec = nat_spec(BASE)
    assert spec['internal_interfaces'] == [('ve-', True)]
    text = ruleset_text(render_tables(spec), 'nixfleet_nat')
    assert 'iifname "ve-*" oifname "eth0" masquerade' in text
    assert '"ve-+"' not in text
    assert ('PRE', ['-i', 've-+', '-j', 'MARK', '--set-mark', '0x1']) in _iptables.render_rules(spec, 4)
    # The same spec from the nftables spelling.
    assert nat_spec(dict(BASE, internal_interfaces=['ve-*'])) == spec


def test_batch_replaces_the_table_in_one_transaction_and_touches_nothing_else():
    spec = nat_spec(BASE)
    commands = json.loads(batch('nixfleet_nat', render_tables(spec), set()))['nftables']
    assert commands[:3] == [{'add': {'table': {'family': 'ip', 'name': 'nixfleet_nat'}}},
                            {'delete': {'table': {'family': 'ip', 'name': 'nixfleet_nat'}}},
                            {'add': {'table': {'family': 'ip', 'name': 'nixfleet_nat'}}}]
    for command in commands:
        body = list(command.values())[0]
        body = list(body.values())[0]
        assert body.get('table', body.get('name')) == 'nixfleet_nat'
    # absent: only deletes, and only the families that exist
    assert json.loads(batch('nixfleet_nat', {}, {'ip6'}))['nftables'] == [
        {'add': {'table': {'family': 'ip6', 'name': 'nixfleet_nat'}}},
        {'delete': {'table': {'family': 'ip6', 'name': 'nixfleet_nat'}}}]


def test_snat_external_ip_ranges_loopback_and_ipv6():
    spec = nat_spec(dict(BASE, external_ip='192.0.2.10', ipv6=True, internal_ips=['10.233.0.0/16', 'fc00::/64'],
                         forwards=[dict(proto='udp', host_port='6000-6010', destination='10.233.2.2:7000-7010',
                                        loopback_ips=['192.0.2.10']),
                                   dict(proto='tcp', host_port=443, destination='[fc00::2]:8443')]))
    tables = render_tables(spec)
    text = ruleset_text(tables, 'nixfleet_nat')
    assert 'iifname "eth0" ip daddr 192.0.2.10 udp dport 6000-6010 dnat to 10.233.2.2:7000-7010' in text
    assert 'ip saddr 10.233.0.0/16 oifname "eth0" snat to 192.0.2.10' in text
    assert 'ip6 saddr fc00::/64 oifname "eth0" masquerade' in text
    assert 'dnat to [fc00::2]:8443' in text
    out_rules = [r for r in tables['ip']['rules'] if r['chain'] == 'out']
    assert len(out_rules) == 1 and out_rules[0]['comment'].startswith('loopback 192.0.2.10')
    assert not [r for r in tables['ip']['rules'] if 'fc00' in json.dumps(r)]


@pytest.mark.parametrize('params, needle', [
    (dict(BASE, external_interface=None), 'external_interface is required'),
    (dict(BASE, external_interface='eth0-is-far-too-long'), 'external_interface'),
    (dict(BASE, internal_interfaces=['*']), 'internal_interfaces[0]'),
    (dict(BASE, internal_interfaces=['v*e']), 'only allowed at the end'),
    (dict(BASE, internal_ips=['10.0.0.0/33']), 'internal_ips[0]'),
    (dict(BASE, internal_ips=['fc00::/64']), 'set ipv6=true'),
    (dict(BASE, forwards=[dict(host_port=0, destination='10.0.0.1:80')]), 'forwards[0].host_port'),
    (dict(BASE, forwards=[dict(host_port='90-80', destination='10.0.0.1')]), 'ends before it starts'),
    (dict(BASE, forwards=[dict(host_port=80, destination='10.0.0.1:99999')]), 'forwards[0].destination'),
    (dict(BASE, forwards=[dict(host_port=80, destination='web:80')]), 'not an IP address'),
    (dict(BASE, forwards=[dict(host_port=80, destination='10.0.0.1', proto='sctp')]), 'forwards[0].proto'),
    (dict(BASE, forwards=[dict(host_port='80-90', destination='10.0.0.1:1000-1002')]), 'not as long'),
    (dict(BASE, forwards=[dict(host_port=80, destination='10.0.0.1'),
                          dict(host_port='70-85', destination='10.0.0.2')]), 'overlaps forwards[0]'),
    (dict(BASE, forwards=[dict(host_port=80, destination='10.0.0.1', loopback_ips=['fc00::1'])]), 'loopback_ips[0]'),
    (dict(BASE, table='nixos-nat'), 'table'),
    (dict(BASE, table='1bad'), 'table'),
])
def test_bad_input_names_the_parameter(params, needle):
    with pytest.raises(NatSpecError) as info:
        nat_spec(params)
    assert needle in str(info.value)


def test_same_port_on_tcp_and_udp_is_not_a_duplicate():
    spec = nat_spec(dict(BASE, forwards=[dict(proto='tcp', host_port=53, destination='10.0.0.1'),
                                         dict(proto='udp', host_port=53, destination='10.0.0.1')]))
    assert len(spec['forwards']) == 2


def test_port_and_destination_parsing():
    assert parse_port_range('8000:8010', 'x') == (8000, 8010)
    assert parse_port_range(' 22 ', 'x') == (22, 22)
    assert parse_destination('[fc00::2]:80', 'x')[1] == (80, 80)
    assert str(parse_destination('fc00::2', 'x')[0]) == 'fc00::2'
    assert parse_destination('10.0.0.1', 'x')[1] is None
