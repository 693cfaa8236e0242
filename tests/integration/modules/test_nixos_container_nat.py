"""nixos_container_nat against the lab, proven with real packets (docs/lab.md topology).

One container `web` (HTTP stand-in on :80) runs on host1 for the whole file. The outside
namespace (nfl<id>-out, an HTTP responder answering `client=<source>`) stands in for the
internet: masquerade is proven by what it sees, forwards by requests made from it.
"""

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time

import pytest

from host_checks import bad_play, four_step_changes, four_step_play, module_play, module_result

HOST = 'host1'
NAME = 'web'
FORWARD = [dict(host_port=8080, destination='10.233.1.2:80')]
FOREIGN = ('table ip nixos-nat {\n\tchain post {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n'
           '\t\tiifname "foreign0" masquerade\n\t}\n}\n')

CLEANUP = r'''
nft delete table ip nixfleet_nat 2>/dev/null
nft delete table ip6 nixfleet_nat 2>/dev/null
nft delete table ip nixos-nat 2>/dev/null
for t in iptables ip6tables; do
  for c in PRE:PREROUTING POST:POSTROUTING OUT:OUTPUT; do
    $t -w -t nat -D ${c#*:} -j NIXFLEET-NAT-${c%%:*} 2>/dev/null
    $t -w -t nat -F NIXFLEET-NAT-${c%%:*} 2>/dev/null
    $t -w -t nat -X NIXFLEET-NAT-${c%%:*} 2>/dev/null
  done
done
sysctl -q -w net.ipv4.conf.all.forwarding=0 net.ipv4.conf.default.forwarding=0
sysctl -q -w net.ipv6.conf.all.forwarding=0 net.ipv6.conf.default.forwarding=0
exit 0
'''


def nat_play(args, check=False, name='nat', host=HOST, ignore_errors=False):
    return module_play(args, host=host, check=check, name=name, ignore_errors=ignore_errors, module='nixos_container_nat')


def four_steps(args):
    return four_step_play(args, host=HOST, module='nixos_container_nat')


def steps_changed(run):
    return four_step_changes(run, HOST)


def outside_netns():
    return 'nfl%s-out' % os.environ.get('NIXFLEET_LAB_ID', '0')


def container_to_outside(lab):
    """What the outside answers to the container (via its netns), or '' when unreachable."""
    script = ('pid=$(machinectl show %s -p Leader --value) && '
              'nsenter -t "$pid" -n curl -s -m 3 http://%s/' % (NAME, lab.outside_address))
    return lab.exec(HOST, 'sh', '-c', script).stdout.strip()


def outside_to(address, port=8080):
    proc = subprocess.run(['ip', 'netns', 'exec', outside_netns(), 'curl', '-s', '-m', '3',
                           'http://%s:%d/' % (address, port)], capture_output=True, text=True, check=False)
    return proc.stdout.strip()


def ruleset(lab, host=HOST):
    return lab.exec(host, 'nft', 'list', 'ruleset', check=True).stdout


def table(lab, family='ip', host=HOST):
    proc = lab.exec(host, 'nft', 'list', 'table', family, 'nixfleet_nat')
    return proc.stdout if proc.returncode == 0 else None


def sysctl(lab, key, host=HOST):
    return lab.exec(host, 'sysctl', '-n', key, check=True).stdout.strip()


@pytest.fixture(scope='module')
def web(lab):
    """`web` with its HTTP stand-in on host1 (10.233.1.2), destroyed at the end."""
    run = lab.playbook(textwrap.dedent('''
        - hosts: %s
          gather_facts: false
          tasks:
            - name: web
              nixfleet.containers.nixos_container:
                name: %s
                host_address: 10.233.1.1
                local_address: 10.233.1.2
                config: "services.nginx.enable = true;"
    ''' % (HOST, NAME)))
    assert run.rc == 0, str(run)
    yield lab
    lab.exec(HOST, 'sh', '-c', 'nixos-container destroy %s' % NAME, timeout=120)


@pytest.fixture
def nat_lab(web):
    web.exec(HOST, 'sh', '-c', CLEANUP, check=True)
    web.exec(HOST, 'nft', '-f', '-', input=FOREIGN, check=True)
    yield web
    web.exec(HOST, 'sh', '-c', CLEANUP, check=True)


def test_masquerade_and_forward_with_nftables(nat_lab):
    lab = nat_lab
    # Without NAT the outside has no route back to 10.233.1.2: nothing comes back.
    assert container_to_outside(lab) == ''
    assert outside_to(lab.address(HOST)) == ''
    foreign_before = lab.exec(HOST, 'nft', 'list', 'table', 'ip', 'nixos-nat', check=True).stdout

    args = dict(external_interface='eth0', internal_interfaces=['ve-+'], forwards=FORWARD)
    run = lab.playbook(four_steps(args), diff=True)
    assert steps_changed(run) == (True, True, False, False)
    real, repeat = module_result(run, 'step2 real'), module_result(run, 'step3 repeat')
    assert real['backend'] == 'nftables' and real['rules_changed']
    # The second run neither reloads rules nor writes sysctls, and its diff is empty.
    assert repeat['actions'] == [] and not repeat['rules_changed']
    diff = run.result(HOST, 'step3 repeat')['result']['diff']
    assert diff['before'] == diff['after']

    # ve-+ was written the nftables way (facts §7.3, NixOS #72580) ...
    assert 'iifname "ve-*" oifname "eth0" masquerade' in table(lab)
    assert sysctl(lab, 'net.ipv4.conf.all.forwarding') == '1'
    # ... and it works: the outside sees the host's uplink address, not 10.233.1.2.
    assert container_to_outside(lab) == 'client=%s' % lab.address(HOST)
    # The outside reaches the container's HTTP stand-in through host1:8080, so does host2.
    assert outside_to(lab.address(HOST)).startswith('web generation')
    assert lab.exec('host2', 'curl', '-s', '-m', '3', 'http://%s:8080/' % lab.address(HOST)).stdout.startswith('web')
    # Nobody else's table was touched.
    assert lab.exec(HOST, 'nft', 'list', 'table', 'ip', 'nixos-nat', check=True).stdout == foreign_before

    # Removing the forward stops it; masquerade stays.
    run = lab.playbook(nat_play(dict(args, forwards=[])), diff=True)
    assert run.rc == 0 and run.result(HOST, 'nat')['changed'], str(run)
    assert outside_to(lab.address(HOST)) == ''
    assert container_to_outside(lab) == 'client=%s' % lab.address(HOST)

    # state=absent removes exactly the owned table.
    run = lab.playbook(nat_play(dict(state='absent')))
    assert run.rc == 0 and run.result(HOST, 'nat')['changed'], str(run)
    assert table(lab) is None
    assert lab.exec(HOST, 'nft', 'list', 'table', 'ip', 'nixos-nat', check=True).stdout == foreign_before
    assert container_to_outside(lab) == ''
    run = lab.playbook(nat_play(dict(state='absent')))
    assert run.rc == 0 and not run.result(HOST, 'nat')['changed'], str(run)


def test_check_mode_changes_nothing_and_bad_input_fails_first(nat_lab):
    lab = nat_lab
    before = (ruleset(lab), sysctl(lab, 'net.ipv4.conf.all.forwarding'))
    args = dict(external_interface='eth0', internal_interfaces=['ve-*'], forwards=FORWARD)
    run = lab.playbook(nat_play(args, check=True), diff=True)
    result = run.result(HOST, 'nat')
    assert run.rc == 0 and result['changed'], str(run)
    assert 'dnat to 10.233.1.2:80' in result['result']['diff']['after']
    assert (ruleset(lab), sysctl(lab, 'net.ipv4.conf.all.forwarding')) == before

    bad = [
        (dict(args, internal_interfaces=['ve-averyveryverylongname']), 'internal_interfaces[0]'),
        (dict(args, forwards=FORWARD + [dict(host_port='8000-8090', destination='10.233.1.2')]),
         'overlaps forwards[0]'),
        (dict(args, forwards=[dict(host_port=70000, destination='10.233.1.2:80')]), 'forwards[0].host_port'),
        (dict(args, forwards=[dict(host_port=80, destination='10.233.1.300:80')]), 'forwards[0].destination'),
        (dict(internal_interfaces=['ve-*']), 'external_interface is required'),
        (dict(args, table='nixos-nat'), 'table'),
    ]
    run = lab.playbook(bad_play('nixos_container_nat', [a for a, _n in bad]))
    for index, (_args, needle) in enumerate(bad):
        result = run.result(HOST, 'bad%d' % index)
        assert result['failed'] and needle in result['result']['msg'], (needle, result)
    assert (ruleset(lab), sysctl(lab, 'net.ipv4.conf.all.forwarding')) == before


LOOP = r'''
import json, os, sys, time, urllib.request
url, stop = sys.argv[1], sys.argv[2]
ok = failed = 0
errors = []
while not os.path.exists(stop):
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            body = response.read().decode()
        if body.startswith("web"):
            ok += 1
        else:
            failed += 1
            errors.append(body[:40])
    except Exception as e:
        failed += 1
        errors.append(repr(e)[:80])
print(json.dumps(dict(ok=ok, failed=failed, errors=errors[:5])))
'''


def test_reapply_has_no_gap(nat_lab):
    """New connections through the forward keep working while the table is replaced."""
    lab = nat_lab
    args = dict(external_interface='eth0', internal_interfaces=['ve-*'], forwards=FORWARD)
    assert lab.playbook(nat_play(args)).rc == 0
    with tempfile.TemporaryDirectory(prefix='nixfleet-gap-') as scratch:
        stop = os.path.join(scratch, 'stop')
        loop = subprocess.Popen(['ip', 'netns', 'exec', outside_netns(), sys.executable, '-c', LOOP,
                                 'http://%s:8080/' % lab.address(HOST), stop],
                                stdout=subprocess.PIPE, text=True)
        try:
            time.sleep(0.5)
            changed = 0
            for extra in (8081, 8082):
                forwards = FORWARD + [dict(host_port=extra, destination='10.233.1.2:80')]
                run = lab.playbook(nat_play(dict(args, forwards=forwards)))
                assert run.rc == 0, str(run)
                changed += run.result(HOST, 'nat')['changed']
            time.sleep(0.5)
        finally:
            open(stop, 'w').close()
            out = loop.communicate(timeout=30)[0]
    counts = json.loads(out)
    assert changed == 2
    assert counts['failed'] == 0, counts
    assert counts['ok'] > 50, counts


def test_iptables_backend_same_semantics(nat_lab):
    lab = nat_lab
    args = dict(backend='iptables', external_interface='eth0', internal_interfaces=['ve-*'], forwards=FORWARD)
    run = lab.playbook(four_steps(args), diff=True)
    assert steps_changed(run) == (True, True, False, False)
    assert module_result(run, 'step3 repeat')['actions'] == []
    rules = lab.exec(HOST, 'iptables', '-w', '-t', 'nat', '-S', check=True).stdout
    # iptables spells the prefix wildcard with "+" (facts §7.2).
    assert '-A NIXFLEET-NAT-PRE -i ve-+ -j MARK --set-xmark 0x1/0xffffffff' in rules
    assert '-A PREROUTING -j NIXFLEET-NAT-PRE' in rules
    assert container_to_outside(lab) == 'client=%s' % lab.address(HOST)
    assert outside_to(lab.address(HOST)).startswith('web generation')
    # auto now finds the module's iptables chains and keeps using them.
    run = lab.playbook(nat_play(dict(args, backend='auto')))
    assert run.rc == 0 and not run.result(HOST, 'nat')['changed'], str(run)
    assert run.result(HOST, 'nat')['result']['backend'] == 'iptables'

    run = lab.playbook(nat_play(dict(backend='iptables', state='absent')))
    assert run.rc == 0 and run.result(HOST, 'nat')['changed'], str(run)
    rules = lab.exec(HOST, 'iptables', '-w', '-t', 'nat', '-S', check=True).stdout
    assert 'NIXFLEET' not in rules
    assert outside_to(lab.address(HOST)) == ''


def test_ipv6_table(nat_lab):
    """IPv6: the lab has no IPv6 uplink, so this proves the ip6 table and sysctls, not traffic."""
    lab = nat_lab
    args = dict(external_interface='eth0', internal_interfaces=['ve-*'], ipv6=True, internal_ips=['fc00::/64'],
                forwards=FORWARD + [dict(host_port=8443, destination='[fc00::2]:443')])
    run = lab.playbook(four_steps(args))
    assert steps_changed(run) == (True, True, False, False)
    six = table(lab, 'ip6')
    assert 'ip6 saddr fc00::/64 oifname "eth0" masquerade' in six
    assert 'dnat to [fc00::2]:443' in six
    assert 'fc00' not in table(lab, 'ip')
    assert sysctl(lab, 'net.ipv6.conf.all.forwarding') == '1'
    run = lab.playbook(nat_play(dict(args, ipv6=False, internal_ips=[], forwards=FORWARD)))
    assert run.rc == 0, str(run)
    assert table(lab, 'ip6') is None and table(lab, 'ip') is not None
