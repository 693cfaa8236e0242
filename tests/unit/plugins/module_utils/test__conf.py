# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ansible_collections.nixfleet.containers.plugins.module_utils._conf import (
    DECLARATIVE_ONLY_KEYS,
    IMPERATIVE_KEYS,
    WORD_LIST_KEYS,
    conf_differences,
    conf_values_error,
    normalise_conf,
    render_conf,
)
from ansible_collections.nixfleet.containers.plugins.module_utils._conf_options import conf_from_options
from ansible_collections.nixfleet.containers.plugins.module_utils._envfile import parse_conf

# The exact files `nixos-container create` writes (facts §2.3).
IMPERATIVE_DEFAULT = (
    'PRIVATE_NETWORK=1\n'
    'HOST_ADDRESS=10.233.1.1\n'
    'LOCAL_ADDRESS=10.233.1.2\n'
    'HOST_BRIDGE=\n'
    'HOST_PORT=\n'
    'AUTO_START=0\n'
)
IMPERATIVE_BRIDGE_PORT_AUTOSTART = (
    'PRIVATE_NETWORK=1\n'
    'HOST_ADDRESS=10.233.1.1\n'
    'LOCAL_ADDRESS=10.233.1.2\n'
    'HOST_BRIDGE=br0\n'
    'HOST_PORT=tcp:80:8080\n'
    'AUTO_START=1\n'
)
IMPERATIVE_FLAKE = IMPERATIVE_DEFAULT + 'FLAKE=github:example/fleet\n'
IMPERATIVE_HOST_NETWORK = (
    'PRIVATE_NETWORK=0\n'
    'HOST_BRIDGE=\n'
    'HOST_PORT=\n'
    'AUTO_START=0\n'
)
# create bar --host-address 10.235.1.1 --local-address 10.235.1.2/24 (facts §1.5): verbatim.
IMPERATIVE_WITH_PREFIX = IMPERATIVE_DEFAULT.replace('10.233.1.1', '10.235.1.1').replace(
    '10.233.1.2', '10.235.1.2/24')
IMPERATIVE_TEXTS = [IMPERATIVE_DEFAULT, IMPERATIVE_BRIDGE_PORT_AUTOSTART, IMPERATIVE_FLAKE,
                    IMPERATIVE_HOST_NETWORK, IMPERATIVE_WITH_PREFIX]

# Shaped like the declarative module's output (facts §2.3): empty lines, quoted lists.
DECLARATIVE = (
    'SYSTEM_PATH=/nix/store/0123456789abcdfghijklmnpqrsvwxyz-nixos-system-web-25.11\n'
    '\n'
    'PRIVATE_NETWORK=1\n'
    'HOST_BRIDGE=\n'
    'HOST_PORT=tcp:8080:80\n'
    'HOST_ADDRESS=10.231.136.1\n'
    'LOCAL_ADDRESS=10.231.136.2\n'
    '\n'
    '\n'
    'PRIVATE_USERS=no\n'
    'INTERFACES=""\n'
    'MACVLANS=""\n'
    'AUTO_START=1\n'
    'EXTRA_NSPAWN_FLAGS="--bind-ro=/srv/data:/data --bind=/var/log/web:/var/log"\n'
)


@pytest.mark.parametrize('text', IMPERATIVE_TEXTS)
def test_imperative_texts_round_trip_byte_for_byte(text):
    assert render_conf(parse_conf(text)) == text


def test_parse_imperative_default():
    assert parse_conf(IMPERATIVE_DEFAULT) == {
        'PRIVATE_NETWORK': '1', 'HOST_ADDRESS': '10.233.1.1', 'LOCAL_ADDRESS': '10.233.1.2',
        'HOST_BRIDGE': '', 'HOST_PORT': '', 'AUTO_START': '0'}
    assert list(parse_conf(IMPERATIVE_DEFAULT)) == list(IMPERATIVE_KEYS[:6])


def test_options_give_the_cli_texts():
    assert render_conf(conf_from_options(dict(host_address='10.233.1.1', local_address='10.233.1.2'))) \
        == IMPERATIVE_DEFAULT
    assert render_conf(conf_from_options(dict(
        host_address='10.233.1.1', local_address='10.233.1.2', host_bridge='br0', auto_start=True,
        forward_ports=[dict(protocol='tcp', host_port=80, container_port=8080)]))) \
        == IMPERATIVE_BRIDGE_PORT_AUTOSTART
    assert render_conf(conf_from_options(dict(
        host_address='10.233.1.1', local_address='10.233.1.2', flake='github:example/fleet'))) \
        == IMPERATIVE_FLAKE
    assert render_conf(conf_from_options(dict(private_network=False))) == IMPERATIVE_HOST_NETWORK


def test_flake_attribute_is_kept_in_our_own_key():
    values = conf_from_options(dict(host_address='10.233.1.1', local_address='10.233.1.2',
                                    flake='github:example/fleet#web'))
    text = render_conf(values)
    # The CLI's lines come first and unchanged (FLAKE has no '#attr', facts P-11).
    assert text == IMPERATIVE_FLAKE + 'NIXFLEET_FLAKE_ATTR=web\n'
    assert parse_conf(text)['NIXFLEET_FLAKE_ATTR'] == 'web'
    assert conf_from_options(dict(flake='path:/srv/fleet', flake_attr='db'))['NIXFLEET_FLAKE_ATTR'] == 'db'


def test_declarative_conf_parses_and_renders_in_our_order():
    values = parse_conf(DECLARATIVE)
    assert values['INTERFACES'] == ''
    assert values['EXTRA_NSPAWN_FLAGS'] == '--bind-ro=/srv/data:/data --bind=/var/log/web:/var/log'
    assert values['AUTO_START'] == '1'
    text = render_conf(values)
    assert text == (
        'PRIVATE_NETWORK=1\n'
        'HOST_ADDRESS=10.231.136.1\n'
        'LOCAL_ADDRESS=10.231.136.2\n'
        'HOST_BRIDGE=\n'
        'HOST_PORT=tcp:8080:80\n'
        'AUTO_START=1\n'
        'SYSTEM_PATH=/nix/store/0123456789abcdfghijklmnpqrsvwxyz-nixos-system-web-25.11\n'
        'PRIVATE_USERS=no\n'
        'EXTRA_NSPAWN_FLAGS="--bind-ro=/srv/data:/data --bind=/var/log/web:/var/log"\n'
    )
    assert normalise_conf(parse_conf(text)) == normalise_conf(values)
    assert conf_values_error(values) is None


def test_render_order_of_every_key_and_unknown_keys_last():
    values = {
        'SOMETHING_ELSE': 'kept', 'NIXFLEET_OTHER': 'ours', 'EXTRA_NSPAWN_FLAGS': '--ephemeral',
        'MACVLANS': 'eth2', 'INTERFACES': 'eth1 eth3', 'PRIVATE_USERS': 'pick',
        'NETWORK_NAMESPACE_PATH': '', 'LOCAL_MAC_ADDRESS': '02:00:00:00:00:01',
        'LOCAL_ADDRESS6': 'fc00::2', 'HOST_ADDRESS6': 'fc00::1', 'COPY_RESOLV_CONF': '1',
        'SYSTEM_PATH': '/nix/store/x', 'NIXFLEET_FLAKE_ATTR': 'web', 'FLAKE': 'path:/f',
        'AUTO_START': '0', 'HOST_PORT': '', 'HOST_BRIDGE': '', 'LOCAL_ADDRESS': '10.0.0.2',
        'HOST_ADDRESS': '10.0.0.1', 'PRIVATE_NETWORK': '1', 'EMPTY_FOREIGN': '',
    }
    keys = [line.split('=', 1)[0] for line in render_conf(values).splitlines()]
    assert keys == ['PRIVATE_NETWORK', 'HOST_ADDRESS', 'LOCAL_ADDRESS', 'HOST_BRIDGE', 'HOST_PORT',
                    'AUTO_START', 'FLAKE', 'SYSTEM_PATH', 'COPY_RESOLV_CONF', 'HOST_ADDRESS6',
                    'LOCAL_ADDRESS6', 'LOCAL_MAC_ADDRESS', 'PRIVATE_USERS', 'INTERFACES',
                    'MACVLANS', 'EXTRA_NSPAWN_FLAGS', 'NIXFLEET_FLAKE_ATTR', 'NIXFLEET_OTHER',
                    'SOMETHING_ELSE', 'EMPTY_FOREIGN']
    assert 'INTERFACES="eth1 eth3"\n' in render_conf(values)
    assert 'HOST_ADDRESS6=fc00::1\n' in render_conf(values)


def test_host_network_never_drops_an_address():
    text = render_conf({'PRIVATE_NETWORK': '0', 'LOCAL_ADDRESS': '10.0.0.2'})
    assert text == 'PRIVATE_NETWORK=0\nLOCAL_ADDRESS=10.0.0.2\nHOST_BRIDGE=\nHOST_PORT=\nAUTO_START=0\n'


@pytest.mark.parametrize('text, expected', [
    ('# comment\n; other comment\n\n   \nA=1\n', {'A': '1'}),
    ('  KEY = value  \n', {'KEY': 'value'}),
    ('A=1\nB=2\nA=3\n', {'A': '3', 'B': '2'}),
    ('A="x y"\n', {'A': 'x y'}),
    ("A='a\"b $x'\n", {'A': 'a"b $x'}),
    ('A="a\\"b\\\\c\\$d\\`e"\n', {'A': 'a"b\\c$d`e'}),
    ('A="a\\qb"\n', {'A': 'a\\qb'}),
    ('A=a"b"\n', {'A': 'a"b"'}),
    ('A="a" \'b\'\n', {'A': 'ab'}),
    ('A="two\nlines"\nB=1\n', {'A': 'two\nlines', 'B': '1'}),
    ('A=con\\\ntinued\n', {'A': 'continued'}),
    ('A=a\\ b\n', {'A': 'a b'}),
    ('A=1\r\nB=2\r\n', {'A': '1', 'B': '2'}),
    ('NO_EQUALS_SIGN\n1BAD=x\nBAD-NAME=y\nA=\n', {'A': ''}),
    ('A=last line without newline', {'A': 'last line without newline'}),
    ('A=x # not a comment\n', {'A': 'x # not a comment'}),
    ('#A=1\\\nB=2\nC=3\n', {'C': '3'}),       # a comment continues over a backslash-newline
    ('', {}),
])
def test_parse_like_systemd_environment_files(text, expected):
    assert parse_conf(text) == expected


def test_parse_keeps_file_order():
    assert list(parse_conf('Z=1\nA=2\nM=3\n')) == ['Z', 'A', 'M']


def test_conf_from_options_everything():
    values = conf_from_options(dict(
        private_network=True, host_address='10.233.4.1', local_address='10.233.4.2/32',
        host_address6='fc00::1', local_address6='fc00::2/64', local_mac_address='02:de:ad:be:ef:01',
        host_bridge=None,
        forward_ports=[dict(host_port=8080, container_port=80), dict(protocol='udp', host_port=53)],
        bind_mounts=[dict(mount_point='/data', host_path='/srv/data'),
                     dict(mount_point='/var/log', read_only=False),
                     dict(mount_point='/etc/ssl', host_path='/etc/ssl', read_only=True)],
        additional_capabilities=['CAP_SYS_TIME'], enable_tun=True, tmpfs=['/tmp', '/var/cache:mode=0755'],
        ephemeral=True, extra_flags=['--resolv-conf=off'], private_users=65536, auto_start=True,
        system_path='/nix/store/abc-nixos-system-web'))
    assert values == {
        'PRIVATE_NETWORK': '1',
        'HOST_ADDRESS': '10.233.4.1',
        'LOCAL_ADDRESS': '10.233.4.2/32',
        'HOST_BRIDGE': '',
        'HOST_PORT': 'tcp:8080:80,udp:53:53',
        'AUTO_START': '1',
        'SYSTEM_PATH': '/nix/store/abc-nixos-system-web',
        'HOST_ADDRESS6': 'fc00::1',
        'LOCAL_ADDRESS6': 'fc00::2/64',
        'LOCAL_MAC_ADDRESS': '02:de:ad:be:ef:01',
        'PRIVATE_USERS': '65536',
        'EXTRA_NSPAWN_FLAGS': ('--bind-ro=/srv/data:/data --bind=/var/log:/var/log '
                               '--bind-ro=/etc/ssl:/etc/ssl --capability=CAP_SYS_TIME,CAP_NET_ADMIN '
                               '--tmpfs=/tmp --tmpfs=/var/cache:mode=0755 --ephemeral --resolv-conf=off'),
    }
    assert conf_values_error(values) is None
    assert parse_conf(render_conf(values)) == values


def test_enable_tun_does_not_repeat_the_capability():
    values = conf_from_options(dict(additional_capabilities=['CAP_NET_ADMIN'], enable_tun=True))
    assert values['EXTRA_NSPAWN_FLAGS'] == '--capability=CAP_NET_ADMIN'


def test_nothing_given_is_the_cli_default_without_addresses():
    values = conf_from_options({})
    assert values == {'PRIVATE_NETWORK': '1', 'HOST_ADDRESS': '', 'LOCAL_ADDRESS': '',
                      'HOST_BRIDGE': '', 'HOST_PORT': '', 'AUTO_START': '0'}


@pytest.mark.parametrize('opts, words', [
    (dict(forward_ports=[dict(protocol='sctp', host_port=1)]), ['forward_ports', 'tcp or udp']),
    (dict(forward_ports=[dict(host_port='http')]), ['forward_ports', 'host_port', 'port number']),
    (dict(forward_ports=[dict(host_port=-1)]), ['forward_ports', 'port number']),
    (dict(forward_ports=[dict(container_port=80)]), ['forward_ports', 'host_port is required']),
    (dict(forward_ports='80'), ['forward_ports', 'list']),
    (dict(bind_mounts=[dict(mount_point='data')]), ['bind_mounts', 'mount_point', 'absolute']),
    (dict(bind_mounts=[dict(mount_point='/d', host_path='/a:b')]), ['bind_mounts', 'host_path', '":"']),
    (dict(bind_mounts=[dict(mount_point='/my data')]), ['bind_mounts', "' '"]),
    (dict(bind_mounts=[dict(mount_point='/d', read_only='yes')]), ['bind_mounts', 'read_only']),
    (dict(extra_flags=['--setenv=A=b c']), ['extra_flags', "' '"]),
    (dict(extra_flags=['--x=$HOME']), ['extra_flags', "'$'"]),
    (dict(tmpfs=['/t*']), ['tmpfs', "'*'"]),
    (dict(additional_capabilities='CAP_X'), ['additional_capabilities', 'list']),
    (dict(private_users=-1), ['private_users']),
    (dict(private_users=True), ['private_users']),
    (dict(private_network='yes'), ['private_network', 'boolean']),
    (dict(flake='repo#web', flake_attr='db'), ['flake', 'flake_attr', 'once']),
    (dict(flake_attr='web'), ['flake_attr needs flake']),
    (dict(host_address=['10.0.0.1']), ['host_address', 'string']),
])
def test_conf_from_options_refuses_bad_shapes(opts, words):
    with pytest.raises(ValueError) as error:
        conf_from_options(opts)
    for word in words:
        assert word in str(error.value)


GOOD = {'PRIVATE_NETWORK': '1', 'HOST_ADDRESS': '10.233.1.1', 'LOCAL_ADDRESS': '10.233.1.2',
        'HOST_BRIDGE': '', 'HOST_PORT': '', 'AUTO_START': '0'}


def with_values(**changes):
    values = dict(GOOD)
    values.update(changes)
    return values


def test_good_values_pass():
    assert conf_values_error(GOOD) is None
    assert conf_values_error(with_values(HOST_PORT='tcp:80:8080,udp:80,443', HOST_BRIDGE='br0',
                                         HOST_ADDRESS='', LOCAL_ADDRESS='10.0.0.5/24')) is None


def test_ipv6_in_the_ipv4_keys_passes_as_nixos_takes_it():
    # containers-ip: hostAddress = "fc00::2"; localAddress = "fc00::1" (the unit's `ip` infers the family).
    assert conf_values_error(with_values(HOST_ADDRESS='fc00::2', LOCAL_ADDRESS='fc00::1')) is None


@pytest.mark.parametrize('bridged', [
    dict(HOST_BRIDGE='br0', HOST_ADDRESS='', LOCAL_ADDRESS='192.168.0.100/24', LOCAL_ADDRESS6='fc00::2/7'),
    dict(HOST_BRIDGE='br0', HOST_ADDRESS='', LOCAL_ADDRESS=''),
])
def test_bridged_containers_need_no_host_address(bridged):
    # containers-bridge: webserver (local addresses only) and web-noip (no address).
    assert conf_values_error(with_values(**bridged)) is None


@pytest.mark.parametrize('changes, words', [
    (dict(HOST_ADDRESS='10.0.0.256'), ['host_address', 'IPv4']),
    (dict(HOST_ADDRESS='10.0.0.1/33'), ['host_address']),
    (dict(HOST_ADDRESS='10.0.0.1/255.255.255.0'), ['host_address']),
    (dict(LOCAL_ADDRESS='fc00::2'), ['host_address', 'local_address', 'same IP version']),
    (dict(HOST_ADDRESS='fc00::2', LOCAL_ADDRESS='10.0.0.2'), ['host_address', 'local_address', 'same IP version']),
    (dict(HOST_ADDRESS='fc00::1', LOCAL_ADDRESS='fc00::1/64'), ['host_address', 'must differ']),
    (dict(HOST_ADDRESS6='fc00::1', LOCAL_ADDRESS6='10.0.0.2'), ['local_address6', 'IPv6']),
    (dict(HOST_ADDRESS6='fe80::1%eth0', LOCAL_ADDRESS6='fe80::2'), ['host_address6']),
    (dict(LOCAL_MAC_ADDRESS='02:00:00:00:00'), ['local_mac_address', 'MAC']),
    (dict(LOCAL_MAC_ADDRESS='03:00:00:00:00:01'), ['local_mac_address', 'multicast']),
    (dict(HOST_PORT='tcp:0:80'), ['forward_ports', '1..65535']),
    (dict(HOST_PORT='65536'), ['forward_ports', '1..65535']),
    (dict(HOST_PORT='tcp:80:8080,80'), ['forward_ports', '80/tcp', 'more than once']),
    (dict(HOST_PORT='sctp:80'), ['forward_ports']),
    (dict(HOST_PORT='tcp:80,'), ['forward_ports']),
    (dict(EXTRA_NSPAWN_FLAGS='--bind=/a:/data --bind-ro=/b:/data'), ['bind_mounts', '/data', 'more than once']),
    (dict(EXTRA_NSPAWN_FLAGS='--bind=/tmp --tmpfs=/tmp'), ['tmpfs', '/tmp', 'more than once']),
    (dict(EXTRA_NSPAWN_FLAGS='--tmpfs=/a*'), ['tmpfs', 'glob']),
    (dict(EXTRA_NSPAWN_FLAGS='--bind=/srv/[ab]'), ['bind_mounts', 'glob']),
    (dict(EXTRA_NSPAWN_FLAGS='--x  --y'), ['extra_flags', 'single spaces']),
    (dict(EXTRA_NSPAWN_FLAGS='--capability=NET_ADMIN'), ['additional_capabilities', 'NET_ADMIN']),
    (dict(FLAKE='github:x/y"'), ['flake', "'\"'"]),
    (dict(HOST_BRIDGE='br0\nEVIL=1'), ['host_bridge', "'\\n'"]),
    (dict(HOST_BRIDGE='br 0'), ['host_bridge', 'whitespace']),
    (dict(HOST_BRIDGE='averyveryverylongbridge'), ['host_bridge', 'bytes']),
    (dict(EXTRA_NSPAWN_FLAGS='--setenv=A=`id`'), ['extra_flags', "'`'"]),
    (dict(EXTRA_NSPAWN_FLAGS='--bind=C:\\x'), ['extra_flags', "'\\\\'"]),
    (dict(SYSTEM_PATH='$HOME/system'), ['system_path', "'$'"]),
    (dict(SYSTEM_PATH='result/system'), ['system_path', 'absolute']),
    (dict(INTERFACES='eth0 averyveryverylongif'), ['interfaces', 'bytes']),
    (dict(INTERFACES='eth1 eth1'), ['interfaces', 'more than once']),
    (dict(INTERFACES='eth1', MACVLANS='eth2 eth1'), ['interfaces', 'macvlans', 'cannot carry a macvlan']),
    (dict(PRIVATE_USERS='sometimes'), ['private_users']),
    (dict(PRIVATE_USERS='4294967296'), ['private_users']),
    (dict(PRIVATE_NETWORK='yes'), ['private_network', '0 or 1']),
    (dict(AUTO_START='true'), ['auto_start', '0 or 1']),
    (dict(LOCAL_ADDRESS=''), ['host_address', 'local_address', 'required']),
    (dict(HOST_ADDRESS='10.233.1.2/24'), ['host_address', 'local_address', 'must differ']),
    (dict(PRIVATE_NETWORK='0'), ['host_address', 'needs private_network']),
    (dict(NETWORK_NAMESPACE_PATH='/run/netns/x'), ['network_namespace_path', 'private_network']),
    (dict(FOREIGN_KEY=' padded'), ['FOREIGN_KEY', 'whitespace']),
    ({'not-a-name': '1'}, ['not-a-name', 'not a valid conf key']),
    (dict(HOST_PORT=['80']), ['forward_ports', 'text']),
])
def test_values_errors_name_the_parameter(changes, words):
    message = conf_values_error(with_values(**changes))
    assert message is not None
    for word in words:
        assert word in message, message


def test_all_problems_are_reported_at_once():
    message = conf_values_error(with_values(HOST_ADDRESS='300.1.1.1', HOST_PORT='0'))
    assert 'host_address' in message and 'forward_ports' in message


def test_normalise_missing_equals_empty_and_flags():
    assert normalise_conf({}) == {'PRIVATE_NETWORK': '0', 'AUTO_START': '0'}
    assert normalise_conf({'HOST_BRIDGE': '', 'AUTO_START': '', 'PRIVATE_NETWORK': 'true'}) == \
        {'PRIVATE_NETWORK': '0', 'AUTO_START': '0'}
    assert normalise_conf(GOOD) == {'PRIVATE_NETWORK': '1', 'HOST_ADDRESS': '10.233.1.1',
                                    'LOCAL_ADDRESS': '10.233.1.2', 'AUTO_START': '0'}


def test_normalise_equivalent_spellings():
    assert normalise_conf({'INTERFACES': ' eth1   eth2 ', 'PRIVATE_USERS': 'no', 'HOST_PORT': '80,udp:53'}) \
        == normalise_conf({'INTERFACES': 'eth1 eth2', 'HOST_PORT': 'udp:53:53,tcp:80:80'})
    # Addresses stay as written: a prefix is a real difference for the unit's routes.
    assert normalise_conf({'LOCAL_ADDRESS': '10.0.0.2/32'}) != normalise_conf({'LOCAL_ADDRESS': '10.0.0.2'})


def test_declarative_and_rendered_are_equal_when_normalised():
    values = parse_conf(DECLARATIVE)
    assert conf_differences(values, parse_conf(render_conf(values))) == []


def test_conf_differences():
    current = parse_conf(IMPERATIVE_DEFAULT)
    desired = dict(current, HOST_PORT='tcp:80:8080', AUTO_START=True, NIXFLEET_FLAKE_ATTR='web', ZZ='1')
    desired.pop('HOST_BRIDGE')
    assert conf_differences(current, desired) == [
        ('HOST_PORT', '', 'tcp:80:8080'),
        ('AUTO_START', '0', '1'),
        ('NIXFLEET_FLAKE_ATTR', '', 'web'),
        ('ZZ', '', '1'),
    ]
    assert conf_differences(current, current) == []


# Property: whatever passes conf_values_error is read back by systemd's rules unchanged.
WORD = st.text('ABCXYZabcxyz0189._:/,=+@%-', min_size=1, max_size=12)
SINGLE_WORD_KEYS = [key for key in IMPERATIVE_KEYS + DECLARATIVE_ONLY_KEYS if key not in WORD_LIST_KEYS]


@st.composite
def conf_values(draw):
    values = {}
    for key in draw(st.lists(st.sampled_from(SINGLE_WORD_KEYS + ['NIXFLEET_X', 'OTHER_KEY']), unique=True)):
        values[key] = draw(st.one_of(st.just(''), WORD, st.booleans(), st.integers(0, 99999)))
    for key in draw(st.lists(st.sampled_from(WORD_LIST_KEYS), unique=True)):
        values[key] = ' '.join(draw(st.lists(WORD, max_size=4)))
    return values


@settings(max_examples=300, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(conf_values())
def test_render_then_parse_keeps_every_value(values):
    read_back = parse_conf(render_conf(values))
    assert normalise_conf(read_back) == normalise_conf(values)
    assert render_conf(read_back) == render_conf(values)
