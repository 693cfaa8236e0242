"""NixOS's own container VM tests, ported: docs/nixos-parity.md lists each assertion and its test.

Each test sets the containers up through the collection with the VM test's own definition (same
names, addresses and options), activates them with the lab's `nixos-rebuild switch` as NixOS does,
and checks what the VM test checks. The ID of each assertion (BR-5, NA-3, ...) is in a comment.
"""

import time

import pytest

from host_checks import module_play, module_result

HOST = 'host1'
CONFIGURATION = '{ config, pkgs, ... }:\n{ imports = [ ./containers ]; }\n'
# The guest of containers-bridge and containers-ip (the lab's stand-in answers HTTP for httpd).
HTTPD = ('services.httpd.enable = true;\nservices.httpd.adminAddr = "foo@example.org";\n'
         'networking.firewall.allowedTCPPorts = [ 80 ];')
# As tests/integration/modules/test_nixos_container_declarative.py: definitions, roots, host links.
CLEAN = r'''
mkdir -p /etc/nixos
names=$(for conf in /etc/nixos-containers/*.conf; do [ -L "$conf" ] && basename "$conf" .conf; done)
printf '{ }\n' > /etc/nixos/configuration.nix
nixos-rebuild switch 2>/dev/null || echo "nixos-rebuild switch failed" >&2
for name in $names; do
  rm -rf "/var/lib/nixos-containers/$name" "/nix/var/nix/profiles/per-container/$name" \
    "/nix/var/nix/gcroots/per-container/$name"
done
rm -rf /etc/nixos
rmdir /etc/systemd/system/machines.target.wants 2>/dev/null
ip link del br0 2>/dev/null
ip link del dummy-peer 2>/dev/null
for conf in /etc/nixos-containers/*.conf; do [ -L "$conf" ] && echo "left: $conf"; done
grep -n '\.containers$' /etc/hosts
true
'''


@pytest.fixture
def nixos(fresh):
    """host1 with configuration.nix importing ./containers; every definition and br0 removed after."""
    fresh.exec(HOST, 'sh', '-c', 'mkdir -p /etc/nixos && cat > /etc/nixos/configuration.nix',
               input=CONFIGURATION, check=True)
    yield fresh
    proc = fresh.exec(HOST, 'sh', '-c', CLEAN, timeout=300)
    assert proc.returncode == 0 and not proc.stdout.strip() and not proc.stderr.strip(), \
        (proc.returncode, proc.stdout, proc.stderr)


def declare(lab, **definition):
    run = lab.playbook(module_play(definition, host=HOST, module='nixos_container_declarative'))
    result = module_result(run, 'task')
    assert not result['failed'], (result.get('msg'), result)
    return result


def network(lab, check=False, **args):
    run = lab.playbook(module_play(args, host=HOST, check=check, module='nixos_container_network'))
    result = module_result(run, 'task')
    assert not result['failed'], result
    return result


def switch(lab):
    proc = lab.exec(HOST, 'nixos-rebuild', 'switch', timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stderr


def succeed(lab, *argv):
    proc = lab.exec(HOST, *argv, timeout=120)
    assert proc.returncode == 0, (argv, proc.stdout, proc.stderr)
    return proc.stdout


def fails(lab, *argv):
    return lab.exec(HOST, *argv, timeout=120).returncode != 0


def eventually(lab, *argv, tries=20):
    """ARGV succeeds within TRIES seconds (IPv6 duplicate address detection takes a moment)."""
    for _attempt in range(tries):
        if lab.exec(HOST, *argv, timeout=30).returncode == 0:
            return True
        time.sleep(1)
    return False


def test_containers_bridge(nixos):
    # Host: br0 with no ports, 192.168.0.1/24 and fc00::1/7.
    network(nixos, bridges=[dict(name='br0', addresses=['192.168.0.1/24', 'fc00::1/7'])])
    declare(nixos, name='webserver', auto_start=True, private_network=True, host_bridge='br0',
            local_address='192.168.0.100/24', local_address6='fc00::2/7', config=HTTPD)
    declare(nixos, name='web-noip', auto_start=True, private_network=True, host_bridge='br0', config=HTTPD)
    switch(nixos)

    assert 'webserver' in succeed(nixos, 'nixos-container', 'list').split()            # BR-1
    assert 'up' in succeed(nixos, 'nixos-container', 'status', 'webserver')             # BR-2
    succeed(nixos, 'nixos-container', 'run', 'webserver', '--', 'ip', 'link', 'show', 'eth0')  # BR-3
    succeed(nixos, 'nixos-container', 'run', 'web-noip', '--', 'ip', 'link', 'show', 'eth0')   # BR-4
    succeed(nixos, 'ping', '-n', '-c', '1', '192.168.0.100')                            # BR-5
    succeed(nixos, 'curl', '--fail', 'http://192.168.0.100/')                            # BR-6
    assert eventually(nixos, 'ping', '-n', '-c', '1', '-W', '1', 'fc00::2')             # BR-7
    succeed(nixos, 'curl', '--fail', 'http://[fc00::2]/')                                # BR-8
    assert succeed(nixos, 'nixos-container', 'show-ip', 'webserver').strip() == '192.168.0.100'  # BR-9
    # What NixOS makes of it: both host sides in br0, no host address anywhere.
    for link in ('vb-webserver', 'vb-web-noip'):
        assert 'master br0' in succeed(nixos, 'ip', 'link', 'show', link)
    succeed(nixos, 'nixos-container', 'stop', 'webserver')                               # BR-10
    assert fails(nixos, 'curl', '--fail', '--connect-timeout', '2', 'http://192.168.0.100/')
    assert fails(nixos, 'curl', '--fail', '--connect-timeout', '2', 'http://[fc00::2]/')  # BR-11
    assert fails(nixos, 'nixos-container', 'destroy', 'webserver')                      # BR-12


def test_containers_names(nixos):
    names = ('first', 'second', 'really-long-name', 'really-long-long-name-2')
    for number, name in enumerate(names, 1):
        declare(nixos, name=name, auto_start=True, private_network=True,
                host_address='192.168.%d.1' % number, local_address='192.168.%d.2' % number)
    switch(nixos)
    links = succeed(nixos, 'ip', 'link', 'show')
    assert 've-first' in links                                                          # NA-1
    assert 've-second' in links                                                         # NA-2
    assert 've-really-lFYWO' in links                                                   # NA-3
    assert 've-really-l3QgY' in links                                                   # NA-4
    # The unit found the shortened links by their altnames: each container answers.
    for number in range(1, 5):
        succeed(nixos, 'ping', '-n', '-c', '1', '192.168.%d.2' % number)


def test_containers_hosts(nixos):
    network(nixos, bridges=[dict(name='br0', addresses=['10.11.0.254/24'])])
    declare(nixos, name='simple', auto_start=True, private_network=True,
            local_address='10.10.0.1', host_address='10.10.0.254')
    declare(nixos, name='netmask', auto_start=True, private_network=True, host_bridge='br0',
            local_address='10.11.0.1/24')
    switch(nixos)
    hosts = succeed(nixos, 'cat', '/etc/hosts')
    assert '10.10.0.1 simple.containers\n' in hosts and '10.11.0.1 netmask.containers\n' in hosts
    succeed(nixos, 'ping', '-n', '-c', '1', 'simple.containers')                       # HO-1
    succeed(nixos, 'ping', '-n', '-c', '1', 'netmask.containers')                      # HO-2
    # A definition that goes takes its name with it; the host's own lines stay.
    declare(nixos, name='simple', state='absent')
    switch(nixos)
    hosts = succeed(nixos, 'cat', '/etc/hosts')
    assert 'simple.containers' not in hosts and '10.11.0.1 netmask.containers\n' in hosts
    assert hosts.startswith('127.0.0.1\tlocalhost\n')


def test_containers_ip(nixos):
    declare(nixos, name='webserver4', private_network=True, host_address='10.231.136.1',
            local_address='10.231.136.2', config=HTTPD)
    declare(nixos, name='webserver6', private_network=True, host_address='fc00::2', local_address='fc00::1',
            config=HTTPD)
    switch(nixos)
    # The conf carries the IPv6 addresses in the IPv4 keys, as NixOS writes them.
    conf = succeed(nixos, 'cat', '/etc/nixos-containers/webserver6.conf')
    assert 'HOST_ADDRESS=fc00::2\n' in conf and 'LOCAL_ADDRESS=fc00::1\n' in conf

    assert 'webserver4' in succeed(nixos, 'nixos-container', 'list').split()            # IP-1
    succeed(nixos, 'nixos-container', 'start', 'webserver4')                             # IP-2
    assert succeed(nixos, 'nixos-container', 'show-ip', 'webserver4').strip() == '10.231.136.2'  # IP-3
    succeed(nixos, 'ping', '-n', '-c1', '10.231.136.2')                                 # IP-4
    succeed(nixos, 'curl', '--fail', '--connect-timeout', '2', 'http://10.231.136.2/')   # IP-5
    succeed(nixos, 'nixos-container', 'stop', 'webserver4')                              # IP-6
    assert fails(nixos, 'curl', '--fail', '--connect-timeout', '2', 'http://10.231.136.2/')
    assert fails(nixos, 'nixos-container', 'destroy', 'webserver4')                     # IP-7

    assert 'webserver6' in succeed(nixos, 'nixos-container', 'list').split()            # IP-8
    succeed(nixos, 'nixos-container', 'start', 'webserver6')                             # IP-9
    assert eventually(nixos, 'ping', '-n', '-c1', '-W', '1', 'fc00::1')                 # IP-10
    succeed(nixos, 'curl', '--fail', '--connect-timeout', '2', 'http://[fc00::1]/')      # IP-11
    succeed(nixos, 'nixos-container', 'stop', 'webserver6')                              # IP-12
    assert fails(nixos, 'curl', '--fail', '--connect-timeout', '2', 'http://[fc00::1]/')
    assert fails(nixos, 'nixos-container', 'destroy', 'webserver6')                     # IP-13


def test_imperative_containers_take_the_same_definitions(fresh):
    """nixos_container writes what NixOS writes for the bridge and ip definitions (no host
    address for a bridged container, IPv6 verbatim in HOST_ADDRESS), and the unit runs them.
    containers-ip runs on host2: its fc00::2 is webserver's address in containers-bridge."""
    network(fresh, bridges=[dict(name='br0', addresses=['192.168.0.1/24', 'fc00::1/7'])])
    cases = (('host1', 'webserver', dict(host_bridge='br0', local_address='192.168.0.100/24',
                                         local_address6='fc00::2/7')),
             ('host1', 'web-noip', dict(host_bridge='br0')),
             ('host2', 'webserver6', dict(host_address='fc00::2', local_address='fc00::1')))
    try:
        for host, name, options in cases:
            task = dict(name=name, config=HTTPD, private_network=True, **options)
            run = fresh.playbook(module_play(task, host=host))
            assert module_result(run, 'task', host=host)['changed'], run
            again = fresh.playbook(module_play(task, host=host))
            assert not module_result(again, 'task', host=host)['changed'], again
        conf = succeed(fresh, 'cat', '/etc/nixos-containers/webserver.conf')
        assert 'HOST_ADDRESS=\n' in conf and 'LOCAL_ADDRESS=192.168.0.100/24\n' in conf
        noip = succeed(fresh, 'cat', '/etc/nixos-containers/web-noip.conf')
        assert 'HOST_ADDRESS=\n' in noip and 'LOCAL_ADDRESS=\n' in noip      # nothing allocated
        six = fresh.exec('host2', 'cat', '/etc/nixos-containers/webserver6.conf', check=True).stdout
        assert 'HOST_ADDRESS=fc00::2\n' in six and 'LOCAL_ADDRESS=fc00::1\n' in six
        succeed(fresh, 'curl', '--fail', 'http://192.168.0.100/')
        assert eventually(fresh, 'curl', '--fail', '--connect-timeout', '2', 'http://[fc00::2]/')
        succeed(fresh, 'nixos-container', 'run', 'web-noip', '--', 'ip', 'link', 'show', 'eth0')
        for _attempt in range(20):
            if fresh.exec('host2', 'curl', '--fail', '--connect-timeout', '2', 'http://[fc00::1]/').returncode == 0:
                break
            time.sleep(1)
        else:
            pytest.fail('webserver6 on host2 does not answer on http://[fc00::1]/')
    finally:
        fresh.exec(HOST, 'ip', 'link', 'del', 'br0')


# containers-physical_interfaces: every guest has these; the server's also sets its eth1 address
# (the lab's stand-in guest applies networking.interfaces and networking.bridges at its boot).
PI_GUEST = 'networking.firewall.enable = false;\nnix.enable = false;'
SERVER_GUEST = PI_GUEST + '\nnetworking.interfaces.eth1.ipv4.addresses = [ { address = "10.10.0.1"; prefixLength = 24; } ];'


def test_containers_physical_interfaces(nixos):
    succeed(nixos, 'ip', 'link', 'show', 'dev', 'eth1')                                  # PI-1
    # The autoStart machine's networkd dummy: this kernel has no dummy driver, so a veth end.
    succeed(nixos, 'ip', 'link', 'add', 'dummy-test', 'type', 'veth', 'peer', 'name', 'dummy-peer')
    declare(nixos, name='server', private_network=True, interfaces=['eth1'], config=SERVER_GUEST)
    declare(nixos, name='autoStart', auto_start=True, private_network=True, interfaces=['dummy-test'],
            config=PI_GUEST)
    switch(nixos)
    conf = succeed(nixos, 'cat', '/etc/nixos-containers/server.conf')
    assert 'INTERFACES="eth1"\n' in conf and 'PRIVATE_NETWORK=1\n' in conf

    succeed(nixos, 'nixos-container', 'start', 'server')                                 # PI-2
    assert succeed(nixos, 'systemctl', 'is-active', 'container@server.service').strip() == 'active'  # PI-3
    shown = succeed(nixos, 'nixos-container', 'run', 'server', '--', 'ip', 'a', 'show', 'dev', 'eth1')  # PI-5
    assert 'inet 10.10.0.1/24' in shown, shown     # the guest's networking.interfaces.eth1, applied
    assert fails(nixos, 'ip', 'link', 'show', 'dev', 'eth1')          # moved: gone from the host
    assert succeed(nixos, 'systemctl', 'is-active', 'container@autoStart.service').strip() == 'active'  # PI-6
    succeed(nixos, 'nixos-container', 'run', 'autoStart', '--', 'ip', 'a', 'show', 'dev', 'dummy-test')  # PI-8
    # nspawn gives a moved interface back when the container stops.
    succeed(nixos, 'nixos-container', 'stop', 'server')
    assert eventually(nixos, 'ip', 'link', 'show', 'dev', 'eth1')


def test_imperative_interfaces_and_macvlans(fresh):
    """The generic unit reads INTERFACES and MACVLANS, so nixos_container gives them to an
    imperative container: eth1 moved in, a macvlan mv-eth1 on it in a second container."""
    task = dict(name='server', private_network=True, interfaces=['eth1'], config=PI_GUEST)
    run = fresh.playbook(module_play(task, host='host2'))
    assert module_result(run, 'task', host='host2')['changed'], run
    assert not module_result(fresh.playbook(module_play(task, host='host2')), 'task', host='host2')['changed']
    conf = fresh.exec('host2', 'cat', '/etc/nixos-containers/server.conf', check=True).stdout
    assert 'INTERFACES="eth1"\n' in conf
    assert fresh.exec('host2', 'nixos-container', 'run', 'server', '--', 'ip', 'a', 'show', 'dev', 'eth1').returncode == 0
    assert fresh.exec('host2', 'ip', 'link', 'show', 'dev', 'eth1').returncode != 0
    # Removing the interface from the list is a planned restart that gives eth1 back.
    removed = module_result(fresh.playbook(module_play(dict(task, interfaces=[]), host='host2')), 'task', host='host2')
    assert removed['changed'] and removed['action'] == 'restart', removed
    assert fresh.exec('host2', 'ip', 'link', 'show', 'dev', 'eth1').returncode == 0
    assert 'INTERFACES' not in fresh.exec('host2', 'cat', '/etc/nixos-containers/server.conf', check=True).stdout

    macvlan = dict(name='test1', private_network=False, macvlans=['eth1'], config=PI_GUEST)
    run = fresh.playbook(module_play(macvlan, host='host2'))
    assert module_result(run, 'task', host='host2')['changed'], run
    assert 'MACVLANS="eth1"\n' in fresh.exec('host2', 'cat', '/etc/nixos-containers/test1.conf', check=True).stdout
    assert fresh.exec('host2', 'nixos-container', 'run', 'test1', '--', 'ip', 'link', 'show', 'mv-eth1').returncode == 0
    assert fresh.exec('host2', 'ip', 'link', 'show', 'dev', 'eth1').returncode == 0     # a macvlan leaves it there
    bad = module_result(fresh.playbook(module_play(dict(macvlan, interfaces=['eth1']), host='host2',
                                                   ignore_errors=True)), 'task', host='host2')
    assert bad['failed'] and 'cannot carry a macvlan' in bad['msg'], bad


def test_nixos_containers_takes_the_bridge_definitions(fresh):
    """nixos_containers' elements accept containers-bridge's webserver and web-noip as they are."""
    fresh.exec('host3', 'sh', '-c', 'ip link add br0 type bridge && ip addr add 192.168.0.1/24 dev br0 && '
               'ip link set br0 up', check=True)
    try:
        elements = [dict(name='webserver', private_network=True, host_bridge='br0',
                         local_address='192.168.0.100/24', local_address6='fc00::2/7', config=HTTPD),
                    dict(name='web-noip', private_network=True, host_bridge='br0', config=HTTPD)]
        run = fresh.playbook(module_play(dict(containers=elements), host='host3', module='nixos_containers'))
        result = module_result(run, 'task', host='host3')
        assert result['changed'] and not result['failed'], result
        again = fresh.playbook(module_play(dict(containers=elements), host='host3', module='nixos_containers'))
        assert not module_result(again, 'task', host='host3')['changed']
        assert fresh.exec('host3', 'curl', '--fail', '--connect-timeout', '2', 'http://192.168.0.100/').returncode == 0
        noip = fresh.exec('host3', 'cat', '/etc/nixos-containers/web-noip.conf', check=True).stdout
        assert 'HOST_ADDRESS=\n' in noip and 'LOCAL_ADDRESS=\n' in noip
        assert fresh.exec('host3', 'nixos-container', 'run', 'web-noip', '--', 'ip', 'link', 'show', 'eth0').returncode == 0
    finally:
        fresh.exec('host3', 'ip', 'link', 'del', 'br0')


# containers-extra_veth: the host's bridges and the webserver's definition, as the VM test has them.
EV_BRIDGES = [dict(name='br0', addresses=['192.168.0.1/24', 'fc00::1/7']), dict(name='br1', addresses=['192.168.1.1/24'])]
EV_VETHS = [dict(name='veth1', host_bridge='br1', local_address='192.168.1.100/24'),
            dict(name='veth2', host_address='192.168.2.1', local_address='192.168.2.100')]
EV_GUEST = 'networking.firewall.allowedTCPPorts = [ 80 ];\nnetworking.firewall.allowPing = true;'


def link_is_up(text):
    """`ip link show` of an up link: iproute2 says `state UP`; the lab guest's busybox `ip`
    prints no state, only the UP flag (docs/nixos-parity.md), so inside it that flag counts."""
    return 'state UP' in text or ',UP,' in text.split('>')[0] + ','


def test_containers_extra_veth(nixos):
    network(nixos, bridges=EV_BRIDGES)
    try:
        declare(nixos, name='webserver', auto_start=True, private_network=True, host_bridge='br0',
                local_address='192.168.0.100/24', local_address6='fc00::2/7', extra_veths=EV_VETHS, config=EV_GUEST)
        switch(nixos)
        assert 'webserver' in succeed(nixos, 'nixos-container', 'list').split()          # EV-1
        assert 'up' in succeed(nixos, 'nixos-container', 'status', 'webserver')           # EV-2
        for veth in ('veth1', 'veth2'):                                                   # EV-3, EV-4
            assert link_is_up(succeed(nixos, 'nixos-container', 'run', 'webserver', '--', 'ip', 'link', 'show', veth))
        assert 'state UP' in succeed(nixos, 'ip', 'link', 'show', 'veth1')                # EV-5
        assert 'state UP' in succeed(nixos, 'ip', 'link', 'show', 'veth2')                # EV-6
        assert 'master br1' in succeed(nixos, 'ip', 'link', 'show', 'veth1')              # EV-7
        succeed(nixos, 'ping', '-n', '-c', '1', '192.168.0.100')                         # EV-8
        assert eventually(nixos, 'ping', '-n', '-c', '1', '-W', '1', 'fc00::2')          # EV-9
        succeed(nixos, 'ping', '-n', '-c', '1', '192.168.1.100')                         # EV-10
        succeed(nixos, 'ping', '-n', '-c', '1', '192.168.2.100')                         # EV-11
        # What NixOS's unit made: veth2's host address (/32) and a route to the container's.
        assert 'inet 192.168.2.1/32' in succeed(nixos, 'ip', 'addr', 'show', 'veth2')
        assert '192.168.2.100 dev veth2' in succeed(nixos, 'ip', 'route', 'show')
        succeed(nixos, 'nixos-container', 'stop', 'webserver')                           # EV-12
        assert fails(nixos, 'ping', '-n', '-c', '1', '-W', '1', '192.168.1.100')
        assert fails(nixos, 'ping', '-n', '-c', '1', '-W', '1', '192.168.2.100')         # EV-13
        assert fails(nixos, 'nixos-container', 'destroy', 'webserver')                    # EV-14
        # The kernel took both pairs away with the container.
        assert fails(nixos, 'ip', 'link', 'show', 'veth1') and fails(nixos, 'ip', 'link', 'show', 'veth2')
    finally:
        nixos.exec(HOST, 'ip', 'link', 'del', 'br1')


def test_imperative_extra_veths(fresh):
    """nixos_container gives an imperative container containers-extra_veth's veths: the flags in
    the conf, and the unit drop-in does what NixOS's unit does, at every start (also one made by
    hand); V([]) takes them away again, destroy removes the drop-in."""
    host = 'host2'
    fresh.exec(host, 'sh', '-c', 'ip link add br1 type bridge && ip addr add 192.168.1.1/24 dev br1 && '
               'ip link set br1 up', check=True)
    task = dict(name='webserver', private_network=True, host_address='10.231.7.1', local_address='10.231.7.2',
                extra_veths=EV_VETHS, config=EV_GUEST)
    dropin = '/etc/systemd-mutable/system/container@webserver.service.d/50-nixfleet.conf'
    try:
        check = module_result(fresh.playbook(module_play(task, host=host, check=True)), 'task', host=host)
        assert check['changed'] and fresh.exec(host, 'test', '-e', dropin).returncode != 0, check
        run = fresh.playbook(module_play(task, host=host))
        assert module_result(run, 'task', host=host)['changed'], run
        again = module_result(fresh.playbook(module_play(task, host=host)), 'task', host=host)
        assert not again['changed'], again
        conf = fresh.exec(host, 'cat', '/etc/nixos-containers/webserver.conf', check=True).stdout
        assert '--network-veth-extra=veth1 --network-veth-extra=veth2' in conf

        def veths_work():
            out = fresh.exec(host, 'ip', 'link', 'show', 'veth1', check=True).stdout
            assert 'master br1' in out and 'state UP' in out
            assert 'inet 192.168.2.1/32' in fresh.exec(host, 'ip', 'addr', 'show', 'veth2', check=True).stdout
            for address in ('192.168.1.100', '192.168.2.100'):
                assert fresh.exec(host, 'ping', '-n', '-c', '1', '-W', '2', address).returncode == 0, address
            inside = fresh.exec(host, 'nixos-container', 'run', 'webserver', '--', 'ip', 'route', 'show',
                                check=True).stdout
            assert '192.168.2.1 dev veth2' in inside

        veths_work()
        # A restart the collection does not make sets them up the same way (the unit's own steps).
        fresh.exec(host, 'systemctl', 'restart', 'container@webserver.service', check=True)
        veths_work()
        fresh.exec(host, 'nixos-container', 'stop', 'webserver', check=True)
        assert fresh.exec(host, 'ip', 'link', 'show', 'veth2').returncode != 0       # gone with the container
        # No extra veths any more: a planned restart without them, and no drop-in lines.
        removed = module_result(fresh.playbook(module_play(dict(task, extra_veths=[]), host=host)), 'task', host=host)
        assert removed['changed'] and not removed['failed'], removed
        assert fresh.exec(host, 'ip', 'link', 'show', 'veth1').returncode != 0
        assert fresh.exec(host, 'test', '-e', dropin).returncode != 0
        both = [dict(name='veth1', host_bridge='br1', host_address='10.9.9.1')]
        bad = module_result(fresh.playbook(module_play(dict(task, extra_veths=both), host=host, ignore_errors=True)),
                            'task', host=host)
        assert bad['failed'] and 'extra_veths' in bad['msg'], bad
        module_result(fresh.playbook(module_play(dict(task, state='absent'), host=host)), 'task', host=host)
        assert fresh.exec(host, 'test', '-e', dropin).returncode != 0
    finally:
        fresh.exec(host, 'ip', 'link', 'del', 'br1')


# containers-ephemeral's guest, as the VM test writes it (the lab's stand-in module system reads
# services.nginx.enable and leaves the runCommand unevaluated).
EP_GUEST = '''services.nginx = {
  enable = true;
  virtualHosts.localhost = {
    root = pkgs.runCommand "localhost" {} \'\'
      mkdir "$out"
      echo hello world > "$out/index.html"
    \'\';
  };
};
networking.firewall.allowedTCPPorts = [ 80 ];'''


def test_containers_ephemeral(nixos):
    declare(nixos, name='webserver', ephemeral=True, private_network=True, host_address='10.231.136.1',
            local_address='10.231.136.2', config=EP_GUEST)
    switch(nixos)
    assert 'webserver' in succeed(nixos, 'nixos-container', 'list').split()            # EP-1
    succeed(nixos, 'nixos-container', 'start', 'webserver')                             # EP-2
    succeed(nixos, 'ls', '/run/nixos-containers/webserver')                             # EP-3
    assert fails(nixos, 'ls', '/var/lib/nixos-containers/webserver')                    # EP-4
    address = succeed(nixos, 'nixos-container', 'show-ip', 'webserver').strip()          # EP-5
    assert address == '10.231.136.2'
    succeed(nixos, 'ping', '-n', '-c1', address)                                        # EP-6
    succeed(nixos, 'curl', '--fail', 'http://%s/' % address)                            # EP-7
    # What NixOS's unit does: its root is a runtime directory, no journal link.
    unit = succeed(nixos, 'systemctl', 'show', '-p', 'Environment', '-p', 'RuntimeDirectory',
                   'container@webserver.service')
    assert 'root=/run/nixos-containers/webserver' in unit and 'RuntimeDirectory=nixos-containers/webserver' in unit
    succeed(nixos, 'nixos-container', 'stop', 'webserver')                              # EP-8
    assert fails(nixos, 'curl', '--fail', '--connect-timeout', '2', 'http://%s/' % address)
    assert fails(nixos, 'ls', '/run/nixos-containers/webserver')                        # EP-9
    assert fails(nixos, 'ls', '/var/lib/nixos-containers/webserver')

    # The collection starts and stops it too, with nothing left under /var/lib.
    for state, root_exists in (('started', True), ('stopped', False)):
        result = module_result(nixos.playbook(module_play(dict(name='webserver', state=state), host=HOST)), 'task')
        assert result['changed'] and not result['failed'], result
        assert fails(nixos, 'ls', '/run/nixos-containers/webserver') != root_exists
        assert fails(nixos, 'ls', '/var/lib/nixos-containers/webserver')


def test_imperative_ephemeral_root(fresh):
    """nixos_container's ephemeral container runs as NixOS runs an ephemeral one: from a root
    under /run/nixos-containers that systemd removes at stop (the unit drop-in sets the unit's
    root and RuntimeDirectory); what the guest writes is gone after a restart."""
    host = 'host3'
    task = dict(name='eph', ephemeral=True, private_network=True, config=HTTPD)
    run = fresh.playbook(module_play(task, host=host))
    assert module_result(run, 'task', host=host)['changed'], run
    assert not module_result(fresh.playbook(module_play(task, host=host)), 'task', host=host)['changed']

    def on_host(*argv):
        return fresh.exec(host, *argv)

    unit = on_host('systemctl', 'show', '-p', 'Environment', '-p', 'RuntimeDirectory', 'container@eph.service').stdout
    assert 'root=/run/nixos-containers/eph' in unit and 'RuntimeDirectory=nixos-containers/eph' in unit
    assert on_host('test', '-d', '/run/nixos-containers/eph').returncode == 0
    assert on_host('nixos-container', 'run', 'eph', '--', 'touch', '/root/written').returncode == 0
    assert on_host('nixos-container', 'run', 'eph', '--', 'test', '-e', '/root/written').returncode == 0
    assert on_host('test', '-e', '/var/lib/nixos-containers/eph/root/written').returncode != 0
    on_host('nixos-container', 'stop', 'eph')
    assert on_host('test', '-e', '/run/nixos-containers/eph').returncode != 0          # removed at stop
    started = module_result(fresh.playbook(module_play(task, host=host)), 'task', host=host)
    assert started['changed'] and not started['failed'], started
    assert on_host('nixos-container', 'run', 'eph', '--', 'test', '-e', '/root/written').returncode != 0
    # Not ephemeral any more: a planned restart onto the root in /var/lib, and the drop-in goes.
    back = module_result(fresh.playbook(module_play(dict(task, ephemeral=False), host=host)), 'task', host=host)
    assert back['changed'] and back['action'] == 'restart', back
    assert on_host('test', '-e', '/etc/systemd-mutable/system/container@eph.service.d/50-nixfleet.conf').returncode != 0
    assert on_host('test', '-e', '/run/nixos-containers/eph').returncode != 0


def unit_props(lab, host, name, *properties):
    text = lab.exec(host, 'systemctl', 'show', 'container@%s.service' % name,
                    *['-p%s' % p for p in properties], check=True).stdout
    return dict(line.split('=', 1) for line in text.splitlines() if '=' in line)


# containers-imperative's tmpfiles container: its --config-file, as the VM test writes it.
TMPFILES_CONFIG = '''{
  systemd.tmpfiles.rules = [ "d /foo - - - - -" ];
  systemd.services.foo = {
    serviceConfig.Type = "oneshot";
    script = "ls -al /foo";
    wantedBy = [ "multi-user.target" ];
  };
}
'''


# The VM test's bind mounts: id2's root over id1's (IM-3) and /nested-bindmount into both roots;
# what a failed run leaves of them goes (umount, then the directories).
IM_UNMOUNT = ('for path in /var/lib/nixos-containers/foo-0/very/important/data '
              '/var/lib/nixos-containers/foo/very/important/data /var/lib/nixos-containers/foo; do '
              'mountpoint -q "$path" && umount -l "$path"; done; rm -rf /nested-bindmount /id2-bindmount; true')


def test_containers_imperative_early_stop_and_restarts(fresh):
    """containers-imperative's containers `containers.foo.config = { }`, made by the collection:
    a root bind-mounted over another (IM-3), stop and start (#4989), a stop while it is still
    booting ends cleanly and a later start works, a stop and start without machined (#109695),
    and destroy keeps what is bind-mounted into the roots (IM-18)."""
    host, name = 'host2', 'foo'
    # id1 and id2: the names `nixos-container create foo --ensure-unique-name` gives twice (IM-2:
    # the collection names its containers itself). Created, not started, as by `create`.
    second = 'foo-0'

    def on_host(*argv, timeout=120):
        return fresh.exec(host, *argv, timeout=timeout)

    try:
        for each in (name, second):
            run = fresh.playbook(module_play(dict(name=each, config='', state='present'), host=host))
            assert module_result(run, 'task', host=host)['changed'], run
        # IM-3: id2's root moved and bind-mounted on id1's root path; the addresses still differ.
        fresh.exec(host, 'sh', '-c', 'mv /var/lib/nixos-containers/foo-0 /id2-bindmount && '
                   'mount --bind /id2-bindmount /var/lib/nixos-containers/foo', check=True)
        ip1 = on_host('nixos-container', 'show-ip', name)
        ip2 = on_host('nixos-container', 'show-ip', second)
        assert ip1.returncode == 0 and ip2.returncode == 0 and ip1.stdout.strip() != ip2.stdout.strip(), (ip1, ip2)
        # The bind mount into both roots (the collection must not delete through it, IM-18).
        for each in (name, second):
            important = '/var/lib/nixos-containers/%s/very/important/data' % each
            mounted = on_host('sh', '-c', 'mkdir -p /nested-bindmount %s && echo "important data" > /nested-bindmount/dummy && '
                              'mount --bind /nested-bindmount %s && cat %s/dummy' % (important, important, important))
            assert mounted.stdout == 'important data\n', mounted
        assert on_host('nixos-container', 'start', name).returncode == 0                       # IM-4
        run_im_checks(fresh, on_host, host, name, second)
    finally:
        on_host('sh', '-c', IM_UNMOUNT)


def run_im_checks(fresh, on_host, host, name, second):
    """containers-imperative from `Execute commands via the root shell` on (IM-5 to IM-19)."""
    assert 'Linux' in on_host('nixos-container', 'run', name, '--', 'uname').stdout             # IM-5
    assert on_host('nixos-container', 'stop', name).returncode == 0                              # IM-7
    assert on_host('nixos-container', 'start', name).returncode == 0

    # IM-8: a start in the background, and a stop while the guest has not reported READY yet.
    assert on_host('nixos-container', 'stop', name).returncode == 0
    fresh.fault(host, 'slow-start', name, '20')
    try:
        on_host('sh', '-c', 'nixos-container start foo >/dev/null 2>&1 &')
        deadline = time.monotonic() + 30
        while unit_props(fresh, host, name, 'SubState')['SubState'] != 'start':
            assert time.monotonic() < deadline, 'the unit never reached activating/start'
            time.sleep(0.2)
        time.sleep(1.0)
        assert unit_props(fresh, host, name, 'ActiveState')['ActiveState'] == 'activating'
        stop = on_host('nixos-container', 'stop', name)
        assert stop.returncode == 0, stop.stderr
        journal = on_host('journalctl', '-u', 'container@foo', '-o', 'cat', '--no-pager').stdout
        assert 'Container foo exited successfully' in journal, journal                        # IM-9
        assert 'SIGKILL' not in journal, journal
        ended = unit_props(fresh, host, name, 'ActiveState', 'Result')
        assert ended == {'ActiveState': 'inactive', 'Result': 'success'}, ended
    finally:
        fresh.fault(host, 'clear')
    assert on_host('nixos-container', 'start', name).returncode == 0                             # IM-10
    again = module_result(fresh.playbook(module_play(dict(name=name, config=''), host=host)), 'task', host=host)
    assert not again['changed'], again

    def shutdowns():
        journal = on_host('journalctl', '-u', 'container@foo', '-o', 'cat', '--no-pager').stdout
        return journal.count('Container foo has been shut down')

    # IM-11: machined stopped; stop and start still work (#109695).
    assert on_host('systemctl', 'stop', 'systemd-machined').returncode == 0
    before = shutdowns()
    assert on_host('nixos-container', 'stop', name).returncode == 0
    # IM-12: the booted guest halted through reboot(2), as NixOS's systemd does (nspawn's message).
    assert shutdowns() == before + 1
    assert on_host('nixos-container', 'start', name).returncode == 0
    assert 'Linux' in on_host('nixos-container', 'run', name, '--', 'uname').stdout             # IM-16

    for each in (name, second):                                                                  # IM-17
        gone = module_result(fresh.playbook(module_play(dict(name=each, state='absent'), host=host)), 'task', host=host)
        assert gone['changed'] and not gone['failed'], gone
    assert on_host('grep', '-qF', 'important data', '/nested-bindmount/dummy').returncode == 0   # IM-18
    assert on_host('test', '!', '-e', '/var/lib/nixos-containers/foo').returncode == 0          # IM-19

    # IM-13, IM-15: the tmpfiles container from its --config-file (IM-14 asks the guest's systemd).
    on_host('sh', '-c', 'cat > /root/tmpfiles.nix <<"EOF"\n%sEOF' % TMPFILES_CONFIG)
    tmpfiles = dict(name='tmpfiles', config_file='/root/tmpfiles.nix')
    started = module_result(fresh.playbook(module_play(tmpfiles, host=host)), 'task', host=host)
    assert started['changed'] and not started['failed'], started                                # IM-13
    assert unit_props(fresh, host, 'tmpfiles', 'ActiveState')['ActiveState'] == 'active'
    gone = module_result(fresh.playbook(module_play(dict(tmpfiles, state='absent'), host=host)), 'task', host=host)
    assert gone['changed'] and not gone['failed'], gone                                          # IM-15
    assert on_host('test', '!', '-e', '/var/lib/nixos-containers/tmpfiles').returncode == 0


# containers-require-bind-mounts: the host's fileSystems."/srv/data" (tmpfs, noauto) as the mount
# unit NixOS generates from it.
SRV_DATA_MOUNT = '[Unit]\nDescription=/srv/data\n[Mount]\nWhat=tmpfs\nWhere=/srv/data\nType=tmpfs\n'


def test_containers_require_bind_mounts(nixos):
    unit = '/etc/systemd/system/srv-data.mount'
    nixos.exec(HOST, 'sh', '-c', 'mkdir -p /srv/data && cat > %s && systemctl daemon-reload' % unit,
               input=SRV_DATA_MOUNT, check=True)
    try:
        # No privateNetwork in the VM test: NixOS's default, false (the module writes it explicitly).
        declare(nixos, name='require-bind-mounts', private_network=False, bind_mounts=[dict(mount_point='/srv/data')],
                config='')
        switch(nixos)
        assert 'require-bind-mounts' in succeed(nixos, 'nixos-container', 'list').split()    # RB-1
        assert 'down' in succeed(nixos, 'nixos-container', 'status', 'require-bind-mounts')  # RB-2
        inactive = nixos.exec(HOST, 'systemctl', 'is-active', 'srv-data.mount')
        assert inactive.returncode != 0 and inactive.stdout.strip() == 'inactive'            # RB-3
        succeed(nixos, 'nixos-container', 'start', 'require-bind-mounts')                    # RB-4
        assert 'up' in succeed(nixos, 'nixos-container', 'status', 'require-bind-mounts')    # RB-5
        assert 'active' in succeed(nixos, 'systemctl', 'status', 'srv-data.mount')           # RB-6
        succeed(nixos, 'systemctl', 'stop', 'srv-data.mount')                                # RB-7
        assert 'down' in succeed(nixos, 'nixos-container', 'status', 'require-bind-mounts')  # RB-8
        inactive = nixos.exec(HOST, 'systemctl', 'is-active', 'srv-data.mount')
        assert inactive.returncode != 0 and inactive.stdout.strip() == 'inactive'            # RB-9
    finally:
        nixos.exec(HOST, 'sh', '-c', 'systemctl stop srv-data.mount; rm -f %s; systemctl daemon-reload; '
                   'rmdir /srv/data' % unit)


def test_containers_tmpfs(nixos):
    # No privateNetwork in the VM test: NixOS's default, false (the module writes it explicitly).
    declare(nixos, name='tmpfs', auto_start=True, private_network=False,
            tmpfs=['/var', '/var/log', '/some/random/path'], config='')
    switch(nixos)

    def inside(*argv):
        return nixos.exec(HOST, 'nixos-container', 'run', 'tmpfs', '--', *argv, timeout=60)

    def is_tmpfs_mount(path):
        # `mountpoint -q PATH` of the VM test; the lab guest's busybox has no such applet, so the
        # container's own mount table says it (a tmpfs mounted on PATH).
        mounts = inside('cat', '/proc/self/mounts').stdout.splitlines()
        return any(line.split()[1:3] == [path, 'tmpfs'] for line in mounts)

    root = '/var/lib/nixos-containers/tmpfs'
    assert 'tmpfs' in succeed(nixos, 'nixos-container', 'list').split()                 # TM-1
    assert 'up' in succeed(nixos, 'nixos-container', 'status', 'tmpfs')                 # TM-2
    assert is_tmpfs_mount('/var')                                                       # TM-3
    assert is_tmpfs_mount('/var/log')                                                   # TM-5
    assert is_tmpfs_mount('/some/random/path')                                          # TM-7
    assert inside('touch', '/root/test.file').returncode == 0                           # TM-8
    assert 'test.file' in inside('ls', '-l', '/root').stdout
    succeed(nixos, 'test', '-e', root + '/root/test.file')
    assert inside('touch', '/some/random/path/test.file').returncode == 0               # TM-9
    assert inside('test', '-e', '/some/random/path/test.file').returncode == 0
    assert fails(nixos, 'test', '-e', root + '/some/random/path/test.file')             # TM-10
    succeed(nixos, 'touch', root + '/var/test.file')                                    # TM-11
    succeed(nixos, 'test', '-e', root + '/var/test.file')
    assert 'test.file' in succeed(nixos, 'ls', '-l', root + '/var/')
    listing = inside('ls', '-l', '/var')                                                # TM-12
    assert listing.returncode == 0 and 'test.file' not in listing.stdout, listing


def test_containers_portforward(nixos):
    declare(nixos, name='webserver', private_network=True, host_address='192.168.0.1', local_address='192.168.0.100',
            forward_ports=[dict(protocol='tcp', host_port=10080, container_port=80)], config=HTTPD)
    switch(nixos)
    assert 'HOST_PORT=tcp:10080:80\n' in succeed(nixos, 'cat', '/etc/nixos-containers/webserver.conf')
    assert 'webserver' in succeed(nixos, 'nixos-container', 'list').split()            # PF-1
    succeed(nixos, 'nixos-container', 'start', 'webserver')                             # PF-2
    succeed(nixos, 'ping', '-n', '-c1', '192.168.0.1')                                  # PF-3
    succeed(nixos, 'curl', '--fail', 'http://192.168.0.1:10080/')                       # PF-4
    succeed(nixos, 'nixos-container', 'stop', 'webserver')                              # PF-5
    assert fails(nixos, 'curl', '--fail', '--connect-timeout', '2', 'http://192.168.0.1:10080/')
    assert fails(nixos, 'nixos-container', 'destroy', 'webserver')                     # PF-6


def test_containers_unified_hierarchy(nixos):
    declare(nixos, name='test-container', auto_start=True, private_network=False, config='')
    switch(nixos)
    # The VM test pipes `stat -fc %T /sys/fs/cgroup/ | grep cgroup2fs` into root-login; the lab
    # guest's busybox stat names cgroup2 "UNKNOWN", so the same login reads the mount table.
    login = nixos.exec(HOST, 'nixos-container', 'root-login', 'test-container',
                       input="grep ' /sys/fs/cgroup cgroup2 ' /proc/self/mounts\n", timeout=60)
    assert login.returncode == 0 and 'cgroup2' in login.stdout, login                  # UH-1


# containers-physical_interfaces' bridged, bonded and bridgedbond machines: each container gets
# the machine's eth1. The stand-in guest applies the bridge (PI-11); this machine's kernel has no
# bonding driver, so the bonds are not made (PI-14, PI-17 are not ported).
BOND = '\nnetworking.bonds.bond0 = { interfaces = [ "eth1" ]; driverOptions.mode = "active-backup"; };'
PI_GUESTS = {
    'bridged': (PI_GUEST + '\nnetworking.bridges.br0.interfaces = [ "eth1" ];'
                '\nnetworking.interfaces.br0.ipv4.addresses = [ { address = "10.10.0.2"; prefixLength = 24; } ];'),
    'bonded': (PI_GUEST + BOND
               + '\nnetworking.interfaces.bond0.ipv4.addresses = [ { address = "10.10.0.3"; prefixLength = 24; } ];'),
    'bridgedbond': (PI_GUEST + BOND + '\nnetworking.bridges.br0.interfaces = [ "bond0" ];'
                    '\nnetworking.interfaces.br0.ipv4.addresses = [ { address = "10.10.0.4"; prefixLength = 24; } ];'),
}


@pytest.mark.parametrize('machine', sorted(PI_GUESTS))
def test_containers_physical_interfaces_other_machines(nixos, machine):
    if machine == 'bridged':
        # The server machine of the VM test, on host2 whose eth1 shares host1's L2 segment (the
        # lab's vlan1): its container `server` with host2's eth1 and 10.10.0.1.
        server = dict(name='server', private_network=True, interfaces=['eth1'], config=SERVER_GUEST)
        started = module_result(nixos.playbook(module_play(server, host='host2')), 'task', host='host2')
        assert started['changed'] and not started['failed'], started
    declare(nixos, name=machine, private_network=True, interfaces=['eth1'], config=PI_GUESTS[machine])
    switch(nixos)
    succeed(nixos, 'nixos-container', 'start', machine)                                 # PI-9, PI-12, PI-15
    unit = 'container@%s.service' % machine
    assert succeed(nixos, 'systemctl', 'is-active', unit).strip() == 'active'
    succeed(nixos, 'nixos-container', 'run', machine, '--', 'ip', 'link', 'show', 'eth1')
    if machine == 'bridged':
        assert 'master br0' in succeed(nixos, 'nixos-container', 'run', machine, '--', 'ip', 'link', 'show', 'eth1')
        succeed(nixos, 'nixos-container', 'run', machine, '--', 'ping', '-w', '10', '-c', '1', '-n', '10.10.0.1')  # PI-11
    succeed(nixos, 'nixos-container', 'stop', machine)
    assert eventually(nixos, 'ip', 'link', 'show', 'dev', 'eth1')


def test_containers_nested(nixos):
    # The guest defines containers.nested itself (the stand-in guest ignores it: NE-2, NE-3).
    inner = ('containers.nested = {\n  autoStart = true;\n  privateNetwork = true;\n  config = { };\n};')
    declare(nixos, name='nested', auto_start=True, private_network=True, config=inner)
    switch(nixos)
    assert succeed(nixos, 'systemctl', 'is-active', 'container@nested.service').strip() == 'active'  # NE-1


# containers-macvlans: each container's guest, as the VM test writes it (containerIp1, containerIp2).
MV_GUEST = 'networking.interfaces.mv-eth1 = {\n  ipv4.addresses = [ { address = "%s"; prefixLength = 24; } ];\n};'
# machine1's host side: networking.macvlans.mv-eth1-host on eth1 (mode bridge) with 192.168.1.1/24,
# made with iproute2 (host network configuration; the collection has no host macvlans).
# eth1 up first: a NIC a container gave back comes back down.
MV_HOST = ('ip link set eth1 up && ip link add mv-eth1-host link eth1 type macvlan mode bridge && '
           'ip addr add 192.168.1.1/24 dev mv-eth1-host && ip link set mv-eth1-host up')


def test_containers_macvlans(nixos):
    nixos.exec(HOST, 'sh', '-c', MV_HOST, check=True)
    # machine2: on VLAN 1 with the address the test driver gives it (host2's eth1 shares the segment).
    nixos.exec('host2', 'sh', '-c', 'ip link set eth1 up && ip addr add 192.168.1.2/24 dev eth1', check=True)
    try:
        # No privateNetwork in the VM test: NixOS's default, false (the module writes it explicitly).
        for name, address in (('test1', '192.168.1.253'), ('test2', '192.168.1.254')):
            declare(nixos, name=name, auto_start=True, private_network=False, macvlans=['eth1'],
                    config=MV_GUEST % address)
        switch(nixos)
        assert 'MACVLANS="eth1"\n' in succeed(nixos, 'cat', '/etc/nixos-containers/test1.conf')
        succeed(nixos, 'nixos-container', 'run', 'test1', '--', 'ping', '-n', '-c', '1', '192.168.1.254')  # MV-1
        succeed(nixos, 'ping', '-n', '-c', '1', '192.168.1.253')                                # MV-2
        succeed(nixos, 'ping', '-n', '-c', '1', '192.168.1.254')                                # MV-3
        for address in ('192.168.1.253', '192.168.1.254'):                                      # MV-4, MV-5
            machine2 = nixos.exec('host2', 'ping', '-n', '-c', '1', address)
            assert machine2.returncode == 0, (address, machine2.stdout, machine2.stderr)
    finally:
        nixos.exec(HOST, 'ip', 'link', 'del', 'mv-eth1-host')
        nixos.exec('host2', 'ip', 'addr', 'del', '192.168.1.2/24', 'dev', 'eth1')


# containers-restart_networking's webserver guest, as the VM test writes it.
RN_GUEST = '''networking.firewall.enable = false;
networking.interfaces.eth0.ipv4.addresses = [
  {
    address = "192.168.1.122";
    prefixLength = 24;
  }
];'''


def eth1_in_br0(lab):
    return lab.exec(HOST, 'sh', '-c', "ip l show eth1 | grep 'master br0'").returncode == 0


def test_containers_restart_networking(nixos):
    """The host's change (the `eth1` specialisation and back) is made through
    nixos_container_network, as in test_nixos_container_network.py::test_release_a_bridge_port;
    the container keeps its connectivity through both."""
    base = dict(bridges=[dict(name='br0', addresses=['192.168.1.1/24'])])
    network(nixos, **base)
    try:
        declare(nixos, name='webserver', auto_start=True, private_network=True, host_bridge='br0', config=RN_GUEST)
        switch(nixos)
        succeed(nixos, 'ping', '192.168.1.122', '-c', '1', '-n')                               # RN-1
        succeed(nixos, 'nixos-container', 'run', 'webserver', '--', 'ping', '-c', '1', '-n', '192.168.1.1')  # RN-2
        assert not eth1_in_br0(nixos)                                                          # RN-3

        network(nixos, interface='eth1', bridge='br0', unmanaged_addresses='remove',          # RN-5
                bridges=[dict(name='br0', addresses=['192.168.1.2/24'])])
        succeed(nixos, 'ping', '192.168.1.122', '-c', '1', '-n')                               # RN-6
        succeed(nixos, 'nixos-container', 'run', 'webserver', '--', 'ping', '-c', '1', '-n', '192.168.1.2')  # RN-7
        assert eth1_in_br0(nixos)                                                              # RN-8

        network(nixos, interface='eth1', bridge='br0', bridge_state='absent', unmanaged_addresses='remove',
                **base)                                                                        # RN-10
        succeed(nixos, 'ping', '192.168.1.122', '-c', '1', '-n')                               # RN-11
        succeed(nixos, 'nixos-container', 'run', 'webserver', '--', 'ping', '-c', '1', '-n', '192.168.1.1')  # RN-12
        assert not eth1_in_br0(nixos)                                                          # RN-13
    finally:
        nixos.exec(HOST, 'ip', 'link', 'set', 'eth1', 'nomaster')


def read_check(lab):
    """`nixos-container run test1 cat /etc/check`, as the shell's $(...) gives it."""
    return succeed(lab, 'nixos-container', 'run', 'test1', 'cat', '/etc/check').rstrip('\n')


def test_containers_reloadable(nixos):
    """The specialisations c1 and c2 are the same container change made through
    nixos_container_declarative and the lab's `nixos-rebuild switch` (the lab has no
    specialisations): each declares the guest's definitions as the specialisation writes them."""
    # No privateNetwork in the VM test: NixOS's default, false (the module writes it explicitly).
    container = dict(name='test1', auto_start=True, private_network=False)
    declare(nixos, config='environment.etc.check.text = "client_base";', **container)
    switch(nixos)
    assert 'client_base' in read_check(nixos)                                                 # RL-1
    declare(nixos, config='environment.etc.check.text = lib.mkForce "client_c1";\n'
            'services.httpd.enable = true;\nservices.httpd.adminAddr = "nixos@example.com";', **container)
    switch(nixos)                                                                             # RL-2
    assert read_check(nixos) == 'client_c1'                                                   # RL-3
    declare(nixos, config='environment.etc.check.text = lib.mkForce "client_c2";\n'
            'services.nginx.enable = true;', **container)
    switch(nixos)                                                                             # RL-5
    assert read_check(nixos) == 'client_c2'                                                   # RL-6
    # /etc/check is NixOS's link through /etc/static into the guest's system.
    assert succeed(nixos, 'nixos-container', 'run', 'test1', 'readlink', '/etc/check').strip() == '/etc/static/check'


# containers-imperative's broken container: its --config-file, as the VM test writes it.
BROKEN_CONFIG = '''{
  assertions = [
    { assertion = false;
      message = "I never evaluate";
    }
  ];
}
'''


def test_containers_imperative_failed_create_leaves_nothing(fresh):
    host = 'host2'
    fresh.exec(host, 'sh', '-c', 'cat > /root/broken.nix', input=BROKEN_CONFIG, check=True)
    try:
        created = fresh.exec(host, 'nixos-container', 'create', 'b0rk', '--config-file', '/root/broken.nix')
        assert created.returncode != 0 and 'I never evaluate' in created.stderr, created   # IM-20
        assert fresh.exec(host, 'test', '!', '-e', '/var/lib/nixos-containers/b0rk').returncode == 0  # IM-21
        # The collection: the same definition fails, names the assertion and leaves nothing.
        task = dict(name='b0rk', config_file='/root/broken.nix')
        result = module_result(fresh.playbook(module_play(task, host=host, ignore_errors=True)), 'task', host=host)
        assert result['failed'] and 'I never evaluate' in str(result.get('msg')) + str(result.get('stderr')), result
        for path in ('/var/lib/nixos-containers/b0rk', '/etc/nixos-containers/b0rk.conf'):
            assert fresh.exec(host, 'test', '!', '-e', path).returncode == 0, path
    finally:
        fresh.exec(host, 'rm', '-f', '/root/broken.nix')
