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
    assert not result['failed'], result
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
# (the lab's stand-in guest does not apply networking.interfaces, so PI-11 is not ported).
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
    succeed(nixos, 'nixos-container', 'run', 'server', '--', 'ip', 'a', 'show', 'dev', 'eth1')  # PI-5
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
