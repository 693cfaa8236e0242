# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet spec's JSON Schema and rules: good specs pass, bad ones name host, container and path."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json

import jsonschema
import pytest

from ansible_collections.nixfleet.containers.plugins.module_utils._containers import element_argument_spec
from ansible_collections.nixfleet.containers.plugins.module_utils._fleet_schema import (
    FLEET_SCHEMA,
    fleet_address_errors,
    fleet_claim_errors,
    MODULE_FIELDS,
    ROLLOUT_FIELDS,
    module_options,
    schema_json,
    validate_containers,
)

FULL = dict(
    name='web', state='started', settings={'services': {'nginx': {'enable': True}}}, config='x = 1;',
    nixos_path='/etc/nixpkgs/nixos', rebuild=False, auto_start=True, private_network=True,
    host_address='10.233.7.1', local_address='10.233.7.2', host_address6='fc00::1', local_address6='fc00::2',
    local_mac_address='02:00:00:00:00:01',
    forward_ports=[{'host_port': 8080, 'container_port': 80}, {'protocol': 'udp', 'host_port': 53}],
    bind_mounts=[{'mount_point': '/data', 'host_path': '/srv/data', 'read_only': False}],
    ephemeral=False, tmpfs=['/scratch'], enable_tun=True, additional_capabilities=['CAP_SYS_ADMIN'],
    extra_flags=['--private-users-ownership=auto'], private_users='pick', start_timeout=60,
    health_check={'http': {'port': 80, 'path': '/health', 'expect_status': [200, 204], 'from': 'host'},
                  'tcp': {'port': 80}, 'command': ['systemctl', 'is-active', 'nginx'],
                  'retries': 5, 'delay': 1, 'timeout': 2.5},
    service_group='frontend', tags=['web', 'canary'],
)

GOOD = [
    [],
    [dict(name='a')],
    [FULL],
    [dict(name='f', flake='/srv/flk#web', health_check={'http': {'url': 'http://10.233.1.2/', 'from': 'controller'}})],
    [dict(name='s', system_path='/nix/store/abc-nixos-system'), dict(name='c', config_file='/srv/c.nix')],
    # a system with the configuration it was built from (the role's undo of a change)
    [dict(name='s', system_path='/nix/store/abc-nixos-system', config='services.nginx.enable = true;')],
    [dict(name='h', private_network=False, health_check={'command': ['true']})],
    # NixOS's own definitions (containers-bridge, containers-ip, containers-physical_interfaces).
    [dict(name='webserver', host_bridge='br0', local_address='192.168.0.100/24', local_address6='fc00::2/7'),
     dict(name='web-noip', host_bridge='br0'),
     dict(name='webserver6', host_address='fc00::2', local_address='fc00::1'),
     dict(name='server', interfaces=['eth1']), dict(name='test1', private_network=False, macvlans=['eth1'])],
]


@pytest.mark.parametrize('containers', GOOD, ids=[str(i) for i in range(len(GOOD))])
def test_good_specs_are_valid(containers):
    assert [str(e) for e in validate_containers(containers, host='host1')] == []


BAD = [
    ({'name': 'web', 'colour': 'red'}, 'containers[0]', 'unknown field colour'),
    ({'config': 'x'}, 'containers[0].name', 'name is a required property'),
    ({'name': 'web', 'forward_ports': [{'host_port': 70000}]}, 'containers[0].forward_ports[0].host_port',
     '70000 is greater than the maximum of 65535'),
    ({'name': 'web', 'forward_ports': [{'container_port': 80}]}, 'containers[0].forward_ports[0].host_port',
     'host_port is a required property'),
    ({'name': 'web', 'state': 'running'}, 'containers[0].state', "'running' is not one of"),
    ({'name': 'web', 'bind_mounts': [{'mount_point': 'data'}]}, 'containers[0].bind_mounts[0].mount_point',
     "does not match '^/'"),
    ({'name': 'web', 'bind_mounts': [{'mount_point': '/a b'}]}, 'containers[0].bind_mounts', "contains ' '"),
    ({'name': 'web', 'config': 'x', 'flake': '/f#a'}, 'containers[0].flake', 'mutually exclusive with config'),
    ({'name': 'web', 'settings': {}, 'config_file': '/srv/c.nix'}, 'containers[0].settings',
     'mutually exclusive with config_file'),
    ({'name': 'web', 'system_path': '/nix/store/x', 'flake': '/f#a'}, 'containers[0].system_path',
     'mutually exclusive with flake'),
    ({'name': 'web', 'host_address': '10.233.1.1'}, 'containers[0].host_address',
     'host_address (HOST_ADDRESS) is set, so local_address (LOCAL_ADDRESS) is required as well'),
    ({'name': 'web', 'host_address': '10.233.1.300', 'local_address': '10.233.1.2'}, 'containers[0].host_address',
     'is not an IPv4 or IPv6 address'),
    ({'name': 'web', 'extra_flags': ['--setenv=A=$(id)']}, 'containers[0].extra_flags', "contains '$'"),
    ({'name': 'bad_name'}, 'containers[0].name', 'contains "_"'),
    ({'name': 'waytoolongname'}, 'containers[0].name', 'at most 11'),
    ({'name': 'web', 'health_check': {}}, 'containers[0].health_check', 'should be non-empty'),
    ({'name': 'web', 'health_check': {'http': {'port': 80, 'from': 'moon'}}}, 'containers[0].health_check.http.from',
     "'moon' is not one of"),
    ({'name': 'web', 'health_check': {'http': {'path': '/'}}}, 'containers[0].health_check.http',
     'give either url or port'),
    ({'name': 'web', 'health_check': {'http': {'port': 80, 'expect_status': 700}}},
     'containers[0].health_check.http.expect_status', 'an HTTP status (100..599)'),
    ({'name': 'web', 'health_check': {'tcp': {}}}, 'containers[0].health_check.tcp.port', 'port is a required'),
    ({'name': 'web', 'health_check': {'command': 'curl localhost'}}, 'containers[0].health_check.command',
     "is not of type 'array'"),
    ({'name': 'web', 'health_check': {'command': ['true'], 'retries': -1}}, 'containers[0].health_check.retries',
     'less than the minimum of 0'),
    ({'name': 'web', 'health_check': {'command': ['true'], 'timeout': 0}}, 'containers[0].health_check.timeout',
     'less than or equal to the minimum of 0'),
    ({'name': 'web', 'tags': 'web'}, 'containers[0].tags', "is not of type 'array'"),
    ({'name': 'web', 'service_group': ''}, 'containers[0].service_group', 'should be non-empty'),
]


@pytest.mark.parametrize('spec,path,needle', BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_specs_name_host_container_and_path(spec, path, needle):
    errors = validate_containers([dict(name='ok'), spec][1:], host='host7')
    found = [(e.path and e.field(), e.message) for e in errors]
    assert any(field == path and needle in message for field, message in found), found
    for error in errors:
        assert error.host == 'host7'
        text = str(error)
        assert text.startswith('host7: ')
        if isinstance(spec.get('name'), str):
            assert error.container == spec['name'] and 'container %s: ' % spec['name'] in text


def test_error_index_is_the_position_in_the_list():
    errors = validate_containers([dict(name='a'), dict(name='b', tmpfs='x'), dict(name='a')], host='h')
    assert [(e.index, e.container, e.field()) for e in errors] == [
        (1, 'b', 'containers[1].tmpfs'), (2, 'a', 'containers[2].name')]
    assert errors[1].as_dict() == dict(host='h', container='a', index=2, path='containers[2].name',
                                       message='the name is declared twice on this host (also containers[0])')


def test_not_a_list():
    errors = validate_containers({'name': 'web'}, host='h')
    assert [(e.field(), e.message) for e in errors] == [('containers', "{'name': 'web'} is not of type 'array'")]


def test_the_schema_is_a_valid_draft_2020_12_schema():
    jsonschema.Draft202012Validator.check_schema(FLEET_SCHEMA)
    assert json.loads(schema_json()) == FLEET_SCHEMA


def test_schema_fields_are_the_modules_options_plus_the_rollout():
    # Every non-rollout field must be a nixos_containers element option (so module_options()
    # gives the module exactly what it takes); the one-shot switches stay out of a declarative spec.
    options = set(element_argument_spec())
    assert set(MODULE_FIELDS) <= options
    assert options - set(MODULE_FIELDS) == set(['restart', 'recreate', 'rollback'])
    assert not set(ROLLOUT_FIELDS) & options


def test_module_options_drop_the_rollout_fields():
    assert module_options(FULL) == dict((k, v) for k, v in FULL.items()
                                        if k not in ('health_check', 'service_group', 'tags'))


def _pair(name, host_address, local_address):
    return dict(name=name, host_address=host_address, local_address=local_address)


def test_explicit_addresses_must_be_unique_across_the_fleet():
    specs = {
        'host1': [_pair('web', '10.233.9.1', '10.233.9.2'), dict(name='auto')],
        'host2': [dict(name='auto'), _pair('api', '10.233.8.1', '10.233.9.2/24')],
        'host3': [_pair('db', '10.233.9.1/24', '10.233.7.2')],
    }
    errors = fleet_address_errors(specs)
    assert [(e.host, e.container, e.field()) for e in errors] == [
        ('host2', 'api', 'containers[1].local_address'), ('host3', 'db', 'containers[0].host_address')]
    # Each error names both hosts (its own, and the first user of the address).
    assert str(errors[0]) == (
        'host2: container api: containers[1].local_address: 10.233.9.2 is also the local_address of container web '
        'on host host1 (containers[0]): explicit addresses must be unique across the fleet (leave host_address '
        'and local_address out to get a pair allocated on each host)')
    assert 'is also the host_address of container web on host host1' in str(errors[1])


def test_one_host_may_share_a_host_address_but_not_a_local_address():
    specs = {'host1': [_pair('a', '192.168.100.10', '192.168.100.11'),
                       _pair('b', '192.168.100.10', '192.168.100.12'),
                       _pair('c', '192.168.100.11', '192.168.100.13')]}
    errors = fleet_address_errors(specs)
    assert [(e.container, e.field(), e.message.split(' (')[0]) for e in errors] == [
        ('c', 'containers[2].host_address', '192.168.100.11 is also the local_address of container a on this host')]


def test_address_check_ignores_automatic_invalid_and_ipv6_spellings():
    specs = {
        'h1': [dict(name='a'), _pair('b', 'not-an-ip', 'x'), dict(name='c', local_address6='fc00::2', host_address6='fc00::1')],
        'h2': [dict(name='a'), _pair('b', 'not-an-ip', 'x'), dict(name='d', local_address6='FC00:0::2/64')],
        'h3': 'not a list',
        'h4': ['not a dict'],
    }
    errors = fleet_address_errors(specs)
    assert [(e.host, e.container, e.field()) for e in errors] == [('h2', 'd', 'containers[2].local_address6')]
    assert 'fc00::2 is also the local_address6 of container c on host h1' in errors[0].message


def test_port_check_per_host_and_protocol():
    specs = {'h1': [dict(name='a', forward_ports=[dict(host_port=80), dict(host_port=53, protocol='udp')]),
                    dict(name='b', forward_ports=[dict(host_port=53), dict(host_port=80, protocol='tcp')])],
             'h2': [dict(name='c', forward_ports=[dict(host_port=80)])],
             'h3': 'not a list'}
    errors = fleet_claim_errors(specs)
    assert [(e.host, e.container, e.field(), e.message) for e in errors] == [
        ('h1', 'b', 'containers[1].forward_ports[1].host_port',
         'host port 80/tcp is also forwarded by container a on this host (containers[0])')]


def test_extra_veths_and_moved_interfaces_are_claimed_by_one_container_of_a_host():
    specs = {'h1': [dict(name='a', extra_veths=[dict(name='veth1')], interfaces=['eth1']),
                    dict(name='b', extra_veths=[dict(name='veth2'), dict(name='eth1')]),
                    dict(name='c', interfaces=['veth1'])],
             'h2': [dict(name='d', interfaces=['eth1'])]}
    errors = fleet_claim_errors(specs)
    assert [(e.host, e.container, e.field(), e.message) for e in errors] == [
        ('h1', 'b', 'containers[1].extra_veths[1].name',
         'host interface eth1 is also used by container a on this host (containers[0])'),
        ('h1', 'c', 'containers[2].interfaces[0]',
         'host interface veth1 is also used by container a on this host (containers[0])')]


def test_a_moved_interface_is_no_macvlan_parent_of_another_container_of_a_host():
    specs = {'h1': [dict(name='a', macvlans=['eth1']),
                    dict(name='b', macvlans=['eth1']),
                    dict(name='c', interfaces=['eth1']),
                    dict(name='d', interfaces=['eth2']),
                    dict(name='e', macvlans=['eth2'])]}
    errors = fleet_claim_errors(specs)
    assert [(e.host, e.container, e.field(), e.message) for e in errors] == [
        ('h1', 'c', 'containers[2].interfaces[0]',
         'host interface eth1 is also a macvlan parent of container a on this host (containers[0])'),
        ('h1', 'e', 'containers[4].macvlans[0]',
         'macvlan parent eth2 is also used by container d on this host (containers[3])')]
