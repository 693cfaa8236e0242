# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Extra veths: checks, the conf encoding, the Nix value and the unit's steps (facts §5.3-§5.6)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.nixfleet.containers.plugins.module_utils import _extra_veths
from ansible_collections.nixfleet.containers.plugins.module_utils._conf import conf_values_error, render_conf
from ansible_collections.nixfleet.containers.plugins.module_utils._envfile import parse_conf
from ansible_collections.nixfleet.containers.plugins.module_utils._conf_options import (
    conf_from_options,
    options_from_conf,
    unit_dropin_lines,
)
from ansible_collections.nixfleet.containers.plugins.module_utils._declarative import nix_options
from ansible_collections.nixfleet.containers.plugins.module_utils._plan import restart_differences, conf_needs_write
from ansible_collections.nixfleet.containers.plugins.module_utils._state import parse_dropin, render_dropin

# containers-extra_veth's definition.
VETHS = [dict(name='veth1', host_bridge='br1', local_address='192.168.1.100/24'),
         dict(name='veth2', host_address='192.168.2.1', local_address='192.168.2.100')]


def test_the_conf_carries_the_flags_and_the_definition_and_reads_back():
    conf = conf_from_options(dict(host_bridge='br0', local_address='192.168.0.100/24', extra_veths=VETHS,
                                  extra_flags=['--network-veth-extra=other']))
    assert conf['EXTRA_NSPAWN_FLAGS'] == ('--network-veth-extra=veth1 --network-veth-extra=veth2 '
                                          '--network-veth-extra=other')
    assert conf['NIXFLEET_EXTRA_VETHS'] == ('veth1,host_bridge=br1,local_address=192.168.1.100/24 '
                                            'veth2,host_address=192.168.2.1,local_address=192.168.2.100')
    assert conf_values_error(conf) is None
    assert parse_conf(render_conf(conf)) == conf
    options = options_from_conf(conf)
    assert [dict((k, v) for k, v in veth.items() if v) for veth in options['extra_veths']] == VETHS
    # A flag the user wrote stays theirs.
    assert options['extra_flags'] == ['--network-veth-extra=other']
    assert conf_from_options(options) == conf


def test_a_changed_veth_is_a_restart_even_when_only_an_address_changes():
    before = conf_from_options(dict(extra_veths=VETHS))
    after = conf_from_options(dict(extra_veths=[VETHS[0], dict(VETHS[1], host_address='192.168.2.9')]))
    assert before['EXTRA_NSPAWN_FLAGS'] == after['EXTRA_NSPAWN_FLAGS']
    assert conf_needs_write(before, after)
    assert [d[0] for d in restart_differences(before, after)] == ['NIXFLEET_EXTRA_VETHS']


@pytest.mark.parametrize('items, words', [
    ('veth1', 'must be a list'),
    ([dict(host_bridge='br1')], 'name is required'),
    ([dict(name='a-name-that-is-too-long')], 'at most 15'),
    ([dict(name='veth1'), dict(name='veth1')], 'listed more than once'),
    ([dict(name='ve-web')], 'prefixes'),
    ([dict(name='veth1', host_bridge='br1', host_address='10.0.0.1')], 'cannot be combined with host_bridge'),
    ([dict(name='veth1', local_address='10.0.0.300')], 'local_address'),
    ([dict(name='veth1', local_address='10.0.0.1; rm')], 'local_address'),
    ([dict(name='veth1', host_address6='10.0.0.1')], 'not an IPv6'),
    ([dict(name='veth1', mac='02:00:00:00:00:01')], 'unknown key'),
    # ip route add 10.231.8.2/24 fails: only a bridged extra veth may carry a prefix
    ([dict(name='veth1', local_address='10.231.8.2/24')], 'has a network prefix'),
    ([dict(name='veth1', host_address6='fc00::1/64')], 'has a network prefix'),
])
def test_bad_definitions_are_refused_naming_the_option(items, words):
    with pytest.raises(ValueError) as error:
        conf_from_options(dict(extra_veths=items))
    assert 'extra_veths' in str(error.value) and words in str(error.value)


def test_the_declarative_value_is_nixos_attrset():
    assert nix_options(dict(extra_veths=VETHS))['extraVeths'] == {
        'veth1': {'hostBridge': 'br1', 'localAddress': '192.168.1.100/24'},
        'veth2': {'hostAddress': '192.168.2.1', 'localAddress': '192.168.2.100'}}


def test_the_unit_lines_do_what_nixos_unit_does():
    veths = _extra_veths.check(VETHS)
    lines = _extra_veths.unit_lines('webserver', veths, '/sbin/ip', '/bin/nixos-container')
    assert lines == [
        'ExecStartPre=-/sbin/ip link del dev veth1',
        'ExecStartPre=-/sbin/ip link del dev veth2',
        # veth1: inside up with its address; on the host a port of br1.
        'ExecStartPost=/bin/nixos-container run webserver -- ip link set dev veth1 up',
        'ExecStartPost=/bin/nixos-container run webserver -- ip addr add 192.168.1.100/24 dev veth1',
        'ExecStartPost=/sbin/ip link set dev veth1 master br1 up',
        # veth2: inside its address and a route to the host; on the host the mirror image.
        'ExecStartPost=/bin/nixos-container run webserver -- ip link set dev veth2 up',
        'ExecStartPost=/bin/nixos-container run webserver -- ip addr add 192.168.2.100 dev veth2',
        'ExecStartPost=/bin/nixos-container run webserver -- ip route add 192.168.2.1 dev veth2',
        'ExecStartPost=/sbin/ip link set dev veth2 up',
        'ExecStartPost=/sbin/ip addr add 192.168.2.1 dev veth2',
        'ExecStartPost=/sbin/ip route add 192.168.2.100 dev veth2',
    ]
    assert unit_dropin_lines('webserver', conf_from_options(dict(extra_veths=VETHS)), '/sbin/ip',
                             '/bin/nixos-container') == [_extra_veths.DROPIN_MARK] + lines


def test_an_ephemeral_imperative_container_gets_nixos_ephemeral_root():
    lines = unit_dropin_lines('web', conf_from_options(dict(ephemeral=True)), None, '/bin/nixos-container')
    assert lines == [_extra_veths.DROPIN_MARK, 'Environment="root=/run/nixos-containers/%i"',
                     'RuntimeDirectory=nixos-containers/%i']
    assert unit_dropin_lines('web', conf_from_options(dict()), None, '/bin/nixos-container') == []


def test_the_dropin_keeps_unit_properties_apart_from_the_veth_lines():
    lines = unit_dropin_lines('web', conf_from_options(dict(extra_veths=VETHS[1:])), '/sbin/ip', '/bin/nixos-container')
    text = render_dropin('web', {'MemoryMax': '1G'}, lines)
    assert text.index('MemoryMax=1G') < text.index(_extra_veths.DROPIN_MARK)
    assert parse_dropin(text) == {'MemoryMax': '1G'}
    assert render_dropin('web', {}, lines).startswith('# Managed by nixfleet.containers')
    assert render_dropin('web', {}, []) == ''
