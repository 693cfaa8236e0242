"""The role nixfleet.containers.container_host against the lab (issue 5 item 3, issue 8 items 3-4).

host1 starts with wrong directory modes, host2 with NetworkManager "present" (the detection
marker /etc/NetworkManager; the lab has no NetworkManager service, so the role must write the
drop-in and say that there was nothing to reload). Both get a bridge and NAT. host3 loses its
nixos-container (the link in /run/current-system/sw/bin is moved aside) or gets a container in
the other directory layout, and the role must stop before changing anything.
"""

import json

import pytest

from host_checks import host_state

CONF_DIR, STATE_DIR = '/etc/nixos-containers', '/var/lib/nixos-containers'
CLI_LINK = '/run/current-system/sw/bin/nixos-container'
HIDDEN_CLI = '/run/current-system/sw/bin/.nixos-container.hidden'
NM_CONF = '/etc/NetworkManager/conf.d/nixfleet-containers.conf'
NM_TEXT = ('# Managed by Ansible (nixfleet.containers.container_host).\n'
           '# NetworkManager leaves the host side of NixOS containers alone: ve-NAME veths and vb-NAME\n'
           '# bridge ports are configured by the container@ unit and systemd-nspawn.\n'
           '[keyfile]\n'
           'unmanaged-devices+=interface-name:ve-*;interface-name:vb-*\n')

PLAY = '''
- hosts: nixos_hosts
  gather_facts: false
  roles:
    - nixfleet.containers.container_host
'''

HOST_VARS = {
    'container_host_bridges': [{'name': 'br-ct', 'addresses': ['192.168.100.1/24'], 'mtu': 1400}],
    'container_host_nat': {'external_interface': 'eth0', 'internal_interfaces': ['ve-*', 'vb-*']},
}


def sh(lab, host, script, check=True):
    return lab.exec(host, 'sh', '-c', script, check=check)


def modes(lab, host):
    return sh(lab, host, f'stat -c %a {CONF_DIR} {STATE_DIR}').stdout.split()


def ipj(lab, host, *args):
    return json.loads(lab.exec(host, 'ip', '-j', *args, check=True).stdout or '[]')


def nat_rules(lab, host):
    """The rules of the role's nftables table (family ip), as nft -j gives them."""
    ruleset = json.loads(lab.exec(host, 'nft', '-j', 'list', 'ruleset', check=True).stdout)['nftables']
    tables = [e['table'] for e in ruleset if 'table' in e]
    rules = [e['rule'] for e in ruleset if 'rule' in e and e['rule']['table'] == 'nixfleet_nat']
    return tables, rules


def nm_file(lab, host):
    result = sh(lab, host, f'stat -c %a {NM_CONF} && cat {NM_CONF}', check=False)
    return result.stdout if result.returncode == 0 else None


def changed_names(run, host):
    return {r['name'] for r in run.results if r['host'] == host and r['changed']}


def report(run, host):
    return run.result(host, 'Report')['result']['msg']


@pytest.fixture
def prepared(lab):
    """host1 with wrong directory modes, host2 with NetworkManager's directory; undone after."""
    sh(lab, 'host1', f'chmod 0777 {CONF_DIR} && chmod 0755 {STATE_DIR}')
    sh(lab, 'host2', 'mkdir /etc/NetworkManager')
    yield lab
    for host in ('host1', 'host2'):
        sh(lab, host, 'ip link del br-ct 2>/dev/null; nft delete table ip nixfleet_nat 2>/dev/null; true')
    sh(lab, 'host1', f'chmod 0755 {CONF_DIR} && chmod 0700 {STATE_DIR}')
    sh(lab, 'host2', 'rm -rf /etc/NetworkManager')


def test_prepares_hosts_check_first_then_idempotent(prepared):
    lab = prepared
    hosts = ['host1', 'host2']
    before = {host: host_state(lab, host) for host in hosts}

    # --check --diff: the plan, and nothing on the hosts moves.
    check = lab.playbook(PLAY, limit=hosts, check=True, diff=True, extra_vars=HOST_VARS)
    assert check.rc == 0, check
    assert {host: host_state(lab, host) for host in hosts} == before
    assert modes(lab, 'host1') == ['777', '755']
    assert nm_file(lab, 'host2') is None
    assert changed_names(check, 'host1') == {'Container directories', 'Bridges for containers', 'NAT for containers'}
    assert changed_names(check, 'host2') == {'Bridges for containers', 'NAT for containers',
                                             'NetworkManager drop-in directory',
                                             'Keep NetworkManager away from container interfaces'}
    assert 'directory /etc/nixos-containers (0755): would be created or fixed' in report(check, 'host1')
    assert any('would be written' in line for line in report(check, 'host2'))

    # The real run.
    run = lab.playbook(PLAY, limit=hosts, diff=True, extra_vars=HOST_VARS)
    assert run.rc == 0, run
    assert modes(lab, 'host1') == ['755', '700']
    for host in hosts:
        link, = ipj(lab, host, '-d', 'link', 'show', 'br-ct')
        assert link['linkinfo']['info_kind'] == 'bridge' and 'UP' in link['flags'], link
        assert link['mtu'] == 1400
        addrs = [(a['local'], a['prefixlen']) for a in ipj(lab, host, 'addr', 'show', 'br-ct')[0]['addr_info']
                 if a['family'] == 'inet']
        assert addrs == [('192.168.100.1', 24)]
        tables, rules = nat_rules(lab, host)
        assert {'family': 'ip', 'name': 'nixfleet_nat'} in [{'family': t['family'], 'name': t['name']} for t in tables]
        masquerades = [json.dumps(r['expr']) for r in rules if any('masquerade' in e for e in r['expr'])]
        assert any('"ve-*"' in m and '"eth0"' in m for m in masquerades), rules
        assert any('"vb-*"' in m for m in masquerades), rules
        assert sh(lab, host, 'cat /proc/sys/net/ipv4/conf/all/forwarding').stdout.strip() == '1'
        assert report(run, host)[0] == 'nixos-container: ' + CLI_LINK
    assert nm_file(lab, 'host2') == '644\n' + NM_TEXT
    assert nm_file(lab, 'host1') is None
    assert 'NetworkManager: not on this host (no /etc/NetworkManager), nothing to do' in report(run, 'host1')
    host2_report = report(run, 'host2')
    assert f'NetworkManager: interface-name:ve-*, interface-name:vb-* unmanaged by {NM_CONF}: written' in host2_report
    # No NetworkManager service runs in the lab: the reload is skipped, not failed, and said so.
    assert run.result('host2', 'Reload NetworkManager')['skipped']
    assert any(line.startswith('NetworkManager: not running') and 'nothing to reload' in line
               for line in host2_report), host2_report
    after = {host: host_state(lab, host) for host in hosts}

    # Second run: nothing to do, nothing moves.
    again = lab.playbook(PLAY, limit=hosts, extra_vars=HOST_VARS)
    assert again.rc == 0, again
    assert {host: again.recap[host]['changed'] for host in hosts} == {'host1': 0, 'host2': 0}, again
    assert {host: host_state(lab, host) for host in hosts} == after
    assert 'bridges br-ct: in place' in report(again, 'host1')
    assert (f'NetworkManager: interface-name:ve-*, interface-name:vb-* unmanaged by {NM_CONF}: in place'
            in report(again, 'host2'))
    assert nm_file(lab, 'host2') == '644\n' + NM_TEXT


@pytest.fixture
def hidden_cli(lab):
    """host3 without nixos-container on its PATH (and a conf directory with a wrong mode)."""
    sh(lab, 'host3', f'mv {CLI_LINK} {HIDDEN_CLI} && chmod 0777 {CONF_DIR}')
    yield lab
    sh(lab, 'host3', f'mv {HIDDEN_CLI} {CLI_LINK}; chmod 0755 {CONF_DIR}')


def test_missing_cli_fails_before_any_change(hidden_cli):
    lab = hidden_cli
    run = lab.playbook(PLAY, limit='host3')
    assert run.rc != 0, run
    failure = run.result('host3', 'Require nixos-container')
    assert failure['failed']
    message = failure['result']['msg']
    assert 'boot.enableContainers = true;' in message and 'container_host_cli' in message, message
    assert 'Container directories' not in [r['name'] for r in run.results]
    assert modes(lab, 'host3')[0] == '777'

    # The variable points the role at a tool installed elsewhere.
    run = lab.playbook(PLAY, limit='host3', extra_vars={'container_host_cli': HIDDEN_CLI})
    assert run.rc == 0, run
    assert report(run, 'host3')[0] == 'nixos-container: ' + HIDDEN_CLI
    assert modes(lab, 'host3')[0] == '755'


@pytest.fixture
def modern_container(lab):
    """A container conf in host3's /etc/nixos-containers (the 22.05+ layout)."""
    conf = 'PRIVATE_NETWORK=1\nHOST_ADDRESS=10.233.7.1\nLOCAL_ADDRESS=10.233.7.2\nHOST_BRIDGE=\nHOST_PORT=\nAUTO_START=0\n'
    lab.exec('host3', 'sh', '-c', f'cat > {CONF_DIR}/layout.conf', input=conf, check=True)
    yield lab
    sh(lab, 'host3', f'rm -f {CONF_DIR}/layout.conf; rmdir /etc/containers /var/lib/containers 2>/dev/null; true')


def test_other_directory_layout_is_refused(modern_container):
    lab = modern_container
    legacy = {'container_host_conf_dir': '/etc/containers', 'container_host_state_dir': '/var/lib/containers'}
    run = lab.playbook(PLAY, limit='host3', extra_vars=legacy)
    assert run.rc != 0, run
    message = run.result('host3', 'Refuse to start a second directory layout')['result']['msg']
    assert '/etc/nixos-containers holds containers (layout.conf)' in message, message
    assert 'container_host_conf_dir' in message
    assert sh(lab, 'host3', 'ls -d /etc/containers /var/lib/containers', check=False).returncode != 0
