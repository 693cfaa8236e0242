# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""options_from_conf is the inverse of conf_from_options: keeping unset options is exact."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from hypothesis import given, settings, strategies as st

from ansible_collections.nixfleet.containers.plugins.module_utils._conf import render_conf
from ansible_collections.nixfleet.containers.plugins.module_utils._conf_options import conf_from_options, options_from_conf
from ansible_collections.nixfleet.containers.plugins.module_utils._envfile import parse_conf

paths = st.lists(st.sampled_from(['srv', 'data', 'a-b', 'x.y', 'v_1']), min_size=1, max_size=3).map(
    lambda parts: '/' + '/'.join(parts))
ports = st.integers(min_value=1, max_value=65535)
options = st.fixed_dictionaries({}, optional={
    'private_network': st.just(True),
    'host_address': st.just('10.233.4.1'),
    'local_address': st.just('10.233.4.2'),
    'host_address6': st.just('fc00::1'),
    'host_bridge': st.sampled_from(['br0', 'lan']),
    'forward_ports': st.lists(st.fixed_dictionaries(
        {'host_port': ports}, optional={'protocol': st.sampled_from(['tcp', 'udp']), 'container_port': ports}),
        max_size=3),
    'bind_mounts': st.lists(st.fixed_dictionaries(
        {'mount_point': paths}, optional={'host_path': paths, 'read_only': st.booleans()}), max_size=3),
    'additional_capabilities': st.lists(st.sampled_from(['CAP_SYS_ADMIN', 'CAP_NET_RAW']), max_size=2),
    'tmpfs': st.lists(paths, max_size=2),
    'ephemeral': st.booleans(),
    'extra_flags': st.lists(st.sampled_from(['--volatile=state', '--read-only', '--bind=/a:/b:norbind']),
                            max_size=2),
    'private_users': st.sampled_from(['pick', 'identity', '65536']),
    'auto_start': st.booleans(),
})


@settings(max_examples=300, deadline=None)
@given(options)
def test_round_trip_through_the_file(opts):
    conf = conf_from_options(opts)
    read_back = parse_conf(render_conf(conf))
    assert conf_from_options(options_from_conf(read_back)) == conf


def test_imperative_conf_reads_as_options():
    text = ('PRIVATE_NETWORK=1\nHOST_ADDRESS=10.233.1.1\nLOCAL_ADDRESS=10.233.1.2\nHOST_BRIDGE=\n'
            'HOST_PORT=tcp:8080:80,udp:53\nAUTO_START=1\nFLAKE=/srv/f\nNIXFLEET_FLAKE_ATTR=web\n'
            'EXTRA_NSPAWN_FLAGS="--bind-ro=/srv:/data --bind=/tmp --capability=CAP_NET_ADMIN --ephemeral -U"\n')
    opts = options_from_conf(parse_conf(text))
    assert opts['host_address'] == '10.233.1.1' and opts['local_address'] == '10.233.1.2'
    assert opts['host_bridge'] is None and opts['auto_start'] is True
    assert opts['forward_ports'] == [dict(protocol='tcp', host_port=8080, container_port=80),
                                     dict(protocol='udp', host_port=53, container_port=53)]
    assert opts['bind_mounts'] == [dict(mount_point='/data', host_path='/srv', read_only=True),
                                   dict(mount_point='/tmp', host_path='/tmp', read_only=False)]
    assert opts['additional_capabilities'] == ['CAP_NET_ADMIN'] and opts['ephemeral'] is True
    assert opts['extra_flags'] == ['-U']
    assert (opts['flake'], opts['flake_attr']) == ('/srv/f', 'web')


def test_host_network_conf():
    opts = options_from_conf(parse_conf('PRIVATE_NETWORK=0\nHOST_BRIDGE=\nHOST_PORT=\nAUTO_START=0\n'))
    assert opts['private_network'] is False and opts['forward_ports'] == [] and opts['host_address'] is None
