"""nixos_container_network against the lab: real links, addresses, routes and packets.

The module is driven inside a network namespace made for the test on host1 (``netns``), with
a veth ``ve-t1`` whose peer sits in a second namespace playing the container, so addresses
and routes are proven with a real ping; allocation runs across the three hosts.
"""

import json
import textwrap

import pytest

from host_checks import bad_play, four_step_changes, four_step_play, module_play, module_result

HOST = 'host1'
NS, PEER_NS = 'nft1', 'nft1c'

SETUP = '''
set -e
ip netns add {ns}
ip netns add {peer}
ip -n {ns} link set lo up
ip -n {peer} link set lo up
ip -n {ns} link add ve-t1 type veth peer name eth0 netns {peer}
ip -n {peer} addr add 10.233.9.2/32 dev eth0
ip -n {peer} link set eth0 up
ip -n {peer} route add 10.233.9.1 dev eth0
ip -n {peer} route add default via 10.233.9.1
'''.format(ns=NS, peer=PEER_NS)
TEARDOWN = 'ip netns del {ns} 2>/dev/null; ip netns del {peer} 2>/dev/null; exit 0'.format(ns=NS, peer=PEER_NS)


def play(args, name='net', check=False, host=HOST, ignore_errors=False):
    return module_play(args, host=host, check=check, name=name, ignore_errors=ignore_errors,
                       module='nixos_container_network')


def four_steps(args):
    return four_step_play(args, host=HOST, module='nixos_container_network')


def steps_changed(run):
    return four_step_changes(run, HOST)


def ns_state(lab):
    """Links, addresses and routes of the test namespace (IPv6 link-local left out)."""
    def ipj(*args):
        return json.loads(lab.exec(HOST, 'ip', '-n', NS, '-j', *args, check=True).stdout or '[]')
    links = sorted((l['ifname'], l.get('master', ''), l.get('mtu'), 'UP' in l.get('flags', []))
                   for l in ipj('link', 'show'))
    addrs = sorted((l['ifname'], '%s/%s' % (a['local'], a['prefixlen'])) for l in ipj('addr', 'show')
                   for a in l.get('addr_info', []) if not a['local'].startswith('fe80'))
    routes = sorted((r['dst'], r.get('dev')) for r in ipj('route', 'show') + ipj('-6', 'route', 'show')
                    if not r['dst'].startswith(('fe80', 'ff00', 'multicast')))
    return dict(links=links, addrs=addrs, routes=routes)


def ping(lab, address, ns=NS):
    return lab.exec(HOST, 'ip', 'netns', 'exec', ns, 'ping', '-c', '1', '-W', '2', address).returncode == 0


@pytest.fixture
def netns_lab(lab):
    lab.exec(HOST, 'sh', '-c', TEARDOWN)
    lab.exec(HOST, 'sh', '-c', SETUP, check=True)
    yield lab
    lab.exec(HOST, 'sh', '-c', TEARDOWN, check=True)


def test_veth_addresses_routes_and_bridge(netns_lab):
    lab = netns_lab
    assert not ping(lab, '10.233.9.2')
    args = dict(netns=NS, interface='ve-t1', host_addresses=['10.233.9.1', 'fd00:9::1/64'],
                local_addresses=['10.233.9.2'],
                bridges=[dict(name='br-t1', addresses=['192.168.99.1/24'], mtu=1400)])
    before = ns_state(lab)
    run = lab.playbook(four_steps(args), diff=True)
    assert steps_changed(run) == (True, True, False, False)
    check = module_result(run, 'step1 check')
    assert check['actions'] == [] and 'create bridge br-t1' in check['steps']
    real = module_result(run, 'step2 real')
    assert real['actions'] == check['steps']
    assert real['interface']['addresses'] == ['10.233.9.1/32', 'fd00:9::1/64']
    assert module_result(run, 'step3 repeat')['steps'] == []
    diff = run.result(HOST, 'step2 real')['result']['diff']
    assert diff['before']['br-t1'] == {} and diff['after']['br-t1']['mtu'] == 1400

    after = ns_state(lab)
    assert after != before
    assert ('ve-t1', '10.233.9.1/32') in after['addrs'] and ('ve-t1', 'fd00:9::1/64') in after['addrs']
    assert ('10.233.9.2', 've-t1') in after['routes']
    assert ('br-t1', '', 1400, True) in after['links'] and ('br-t1', '192.168.99.1/24') in after['addrs']
    # Real packets: the host side reaches the "container" and back, through the host route.
    assert ping(lab, '10.233.9.2') and ping(lab, '10.233.9.1', ns=PEER_NS)

    # Unmanaged addresses: kept by default, removed on request.
    lab.exec(HOST, 'ip', '-n', NS, 'addr', 'add', '10.99.0.1/32', 'dev', 've-t1', check=True)
    run = lab.playbook(play(args))
    assert run.rc == 0 and not run.result(HOST, 'net')['changed'], str(run)
    run = lab.playbook(play(dict(args, unmanaged_addresses='remove')))
    assert run.rc == 0 and run.result(HOST, 'net')['result']['steps'] == ['remove 10.99.0.1/32 from ve-t1']
    assert ('ve-t1', '10.99.0.1/32') not in ns_state(lab)['addrs']

    # Enslave to the bridge; then state=absent removes what the module manages.
    lab.exec(HOST, 'ip', '-n', NS, 'link', 'add', 'vb-t2', 'type', 'veth', 'peer', 'name', 'vb-t2p', check=True)
    run = lab.playbook(play(dict(netns=NS, name='t2', bridge='br-t1', bridges=args['bridges'])))
    assert run.rc == 0 and run.result(HOST, 'net')['result']['steps'] == ['enslave vb-t2 to br-t1', 'set vb-t2 up']
    assert ('vb-t2', 'br-t1', 1500, True) in ns_state(lab)['links']
    run = lab.playbook(play(dict(args, state='absent', bridges=[dict(name='br-t1', state='absent')])))
    assert run.rc == 0, str(run)
    state = ns_state(lab)
    assert not [a for a in state['addrs'] if a[0] == 've-t1']
    assert ('10.233.9.2', 've-t1') not in state['routes']
    assert not [l for l in state['links'] if l[0] == 'br-t1']
    assert not ping(lab, '10.233.9.2')


def test_bad_input_and_missing_interface_fail_before_change(netns_lab):
    lab = netns_lab
    before = ns_state(lab)
    cases = [
        (dict(netns=NS, interface='ve-t1', host_addresses=['10.233.9.300']), 'host_addresses[0]'),
        (dict(netns=NS, interface='ve-t1', host_addresses=['10.233.9.1'],
              bridges=[dict(name='br-x', mtu=10)]), 'bridges[0].mtu'),
        (dict(netns=NS, name='bad_name', host_addresses=['10.233.9.1']), 'name:'),
        (dict(netns=NS, interface='a-very-long-interface', host_addresses=['10.233.9.1']), 'interface:'),
        (dict(netns=NS, name='nosuch', host_addresses=['10.233.9.1']), 'does not exist'),
        (dict(netns='nosuch-ns', interface='ve-t1', host_addresses=['10.233.9.1']), 'netns'),
    ]
    run = lab.playbook(bad_play('nixos_container_network', [a for a, _n in cases]))
    for index, (_args, needle) in enumerate(cases):
        result = run.result(HOST, 'bad%d' % index)
        assert result['failed'] and needle in result['result']['msg'], (needle, result)
    assert ns_state(lab) == before
    run = lab.playbook(play(dict(netns=NS, name='nosuch', host_addresses=['10.233.9.1'], when_missing='skip')))
    assert run.rc == 0 and run.result(HOST, 'net')['result']['missing'] is True


def test_a_bridge_is_never_made_a_port_of_another_bridge(netns_lab):
    """The kernel refuses a bridge as a port of a bridge (ELOOP): refused before any change, in
    check mode too, naming the parameter (the bridge listed in bridges is not created)."""
    lab = netns_lab
    lab.exec(HOST, 'ip', '-n', NS, 'link', 'add', 'br-a', 'type', 'bridge', check=True)
    before = ns_state(lab)
    args = dict(netns=NS, interface='br-a', bridge='br-b', bridges=[dict(name='br-b')])
    for check in (True, False):
        result = module_result(lab.playbook(play(args, check=check, ignore_errors=True)), 'net')
        assert result['failed'] and 'br-a is itself a bridge' in result['msg'], result
        assert result['actions'] == [] and not result['changed'], result
        assert ns_state(lab) == before


def test_a_failure_after_a_change_reports_the_change(netns_lab):
    """A step the kernel refuses after earlier steps ran: the result says changed and names what
    was done (an IPv6 address on a link with IPv6 disabled fails after the bridge is created)."""
    lab = netns_lab
    lab.exec(HOST, 'ip', 'netns', 'exec', NS, 'sysctl', '-qw', 'net.ipv6.conf.ve-t1.disable_ipv6=1', check=True)
    args = dict(netns=NS, interface='ve-t1', host_addresses=['fd00:9::1/64'], bridges=[dict(name='br-c')])
    result = module_result(lab.playbook(play(args, ignore_errors=True)), 'net')
    assert result['failed'], result
    assert ('br-c', '', 1500, True) in ns_state(lab)['links']
    assert result['changed'], result
    assert 'create bridge br-c' in result['msg'], result['msg']


TASK = textwrap.dedent('''
        - name: allocate {name}
          nixfleet.containers.nixos_container_network:
            name: {name}
            allocate:
              pool: 10.240.0.0/27
              block_prefix: 30
              mode: prefix
              owner: "{{{{ inventory_hostname }}}}"
              fleet_allocations: "{{{{ fleet + (mine | default([])) }}}}"
          register: result
        - name: remember {name}
          ansible.builtin.set_fact:
            mine: "{{{{ (mine | default([])) + [result.allocation] }}}}"
''')


def allocate_play(host, names):
    """Allocations for NAMES on HOST, each task passing the fleet list plus what it made so far."""
    tasks = ''.join(textwrap.indent(TASK.format(name=name), '    ') for name in names)
    return '- hosts: %s\n  gather_facts: false\n  tasks:\n%s' % (host, tasks)


def allocations(run, host, names):
    return [run.result(host, 'allocate %s' % name)['result']['allocation'] for name in names]


def test_allocation_across_three_hosts_has_no_duplicates(lab):
    """A /27 pool in /30 blocks has 6 usable blocks: 3 hosts x 2 containers take them all."""
    fleet = []
    for host in lab.hosts[:3]:
        run = lab.playbook(allocate_play(host, ['a', 'b']), extra_vars=dict(fleet=fleet))
        assert run.rc == 0, str(run)
        fleet.extend(allocations(run, host, ['a', 'b']))
    assert len(fleet) == 6
    addresses = [a['host_address'] for a in fleet] + [a['local_address'] for a in fleet]
    assert len(set(addresses)) == 12
    assert all(a.endswith('/30') and a.startswith('10.240.0.') for a in addresses)
    # Stable: asking again with the fleet list gives host1's "a" the same block (its own entry).
    run = lab.playbook(allocate_play('host1', ['a']), extra_vars=dict(fleet=fleet))
    again = allocations(run, 'host1', ['a'])
    assert again and again[0]['host_address'] == [f for f in fleet if f['name'] == 'a' and f['host'] == 'host1'][0]['host_address']
    assert again[0]['source'] == {'4': 'fleet'}
    # The pool is exhausted for a seventh container: a clear failure.
    run = lab.playbook(allocate_play('host2', ['c']), extra_vars=dict(fleet=fleet))
    failed = run.result('host2', 'allocate c')
    assert run.rc != 0 and failed['failed'] and 'exhausted' in failed['result']['msg']


def eth1_master(lab):
    links = json.loads(lab.exec(HOST, 'ip', '-j', 'link', 'show', 'eth1', check=True).stdout)
    return links[0].get('master', '')


@pytest.fixture
def eth1_lab(lab):
    """host1's second NIC eth1 out of any bridge, and no br0/br9, before and after."""
    restore = 'ip link set eth1 nomaster; ip link del br0 2>/dev/null; ip link del br9 2>/dev/null; exit 0'
    lab.exec(HOST, 'sh', '-c', restore, check=True)
    yield lab
    lab.exec(HOST, 'sh', '-c', restore, check=True)
    assert eth1_master(lab) == ''


def test_release_a_bridge_port(eth1_lab):
    """containers-restart_networking's host change and its reverse (RN-5, RN-10) through the
    module: eth1 into br0 while br0 moves from .1 to .2, then out again, with the greps of RN-3,
    RN-8 and RN-13."""
    lab = eth1_lab
    base = dict(bridges=[dict(name='br0', addresses=['192.168.1.1/24'])])
    lab.playbook(play(base))
    assert eth1_master(lab) == ''                                                        # RN-3
    enslaved = dict(interface='eth1', bridge='br0', unmanaged_addresses='remove',
                    bridges=[dict(name='br0', addresses=['192.168.1.2/24'])])
    assert module_result(lab.playbook(play(enslaved)), 'net')['changed']                 # RN-5
    assert eth1_master(lab) == 'br0'                                                     # RN-8
    assert 'master br0' in lab.exec(HOST, 'ip', 'l', 'show', 'eth1', check=True).stdout

    released = dict(interface='eth1', bridge='br0', bridge_state='absent', unmanaged_addresses='remove',
                    bridges=[dict(name='br0', addresses=['192.168.1.1/24'])])
    # Check mode: the plan and the diff say what a real run does, and nothing changes.
    checked = lab.playbook(play(released, check=True))
    result = module_result(checked, 'net')
    assert result['changed'] and 'release eth1 from br0' in result['steps'], result
    assert eth1_master(lab) == 'br0'
    run = lab.playbook(play(released), diff=True)
    result = module_result(run, 'net')
    assert result['changed'] and 'release eth1 from br0' in result['actions'], result
    assert result['diff']['before']['eth1']['master'] == 'br0'
    assert result['diff']['after']['eth1']['master'] == ''
    assert eth1_master(lab) == ''                                                        # RN-10
    assert 'master br0' not in lab.exec(HOST, 'ip', 'l', 'show', 'eth1', check=True).stdout  # RN-13
    addresses = lab.exec(HOST, 'ip', '-4', '-br', 'addr', 'show', 'br0', check=True).stdout
    assert '192.168.1.1/24' in addresses and '192.168.1.2' not in addresses
    # A second run changes nothing; a port of another bridge is not released.
    assert not module_result(lab.playbook(play(released)), 'net')['changed']
    lab.exec(HOST, 'sh', '-c', 'ip link add br9 type bridge && ip link set eth1 master br9', check=True)
    assert not module_result(lab.playbook(play(released)), 'net')['changed']
    assert eth1_master(lab) == 'br9'
    # bridge_state=absent without bridge names what is missing, before any change.
    bad = module_result(lab.playbook(play(dict(interface='eth1', bridge_state='absent'), ignore_errors=True)), 'net')
    assert bad['failed'] and 'bridge_state' in bad['msg'], bad
    assert eth1_master(lab) == 'br9'
