"""Issue 13: correctness under real use (no lost configuration, conflicts refused, atomic apply).

Every test sets the situation up through the modules with ansible-playbook and checks the
host over labctl exec; each one failed before its fix.
"""

import json

import pytest

from host_checks import bad_play, host_state, module_play, module_result

NGINX = 'services.nginx.enable = true;'
CONFIG_NIX = '/var/lib/nixos-containers/%s/etc/nixos/configuration.nix'


def conf_of(lab, name, host='host1'):
    return lab.exec(host, 'cat', '/etc/nixos-containers/%s.conf' % name, check=True).stdout


def configuration_of(lab, name, host='host1'):
    return lab.exec(host, 'cat', CONFIG_NIX % name, check=True).stdout


def status(lab, name, host='host1'):
    return lab.exec(host, 'nixos-container', 'status', name).stdout.strip()


def http(lab, address, host='host1', port=80):
    return lab.exec(host, 'curl', '-s', '-m', '5', 'http://%s:%d/' % (address, port)).stdout.strip()


def play_ok(lab, args, module='nixos_container'):
    run = lab.playbook(module_play(args, module=module))
    assert run.rc == 0, str(run)
    return module_result(run, 'task')


def play_failed(lab, args, module='nixos_container', host='host1'):
    run = lab.playbook(module_play(args, module=module, host=host, ignore_errors=True))
    result = module_result(run, 'task', host=host)
    assert result['failed'], result
    return result


# item 1 -------------------------------------------------------------------------------------
def test_recreate_keeps_the_guest_configuration(fresh):
    play_ok(fresh, dict(name='t3', config=NGINX, forward_ports=[dict(host_port=8083, container_port=80)]))
    before = configuration_of(fresh, 't3')
    result = play_ok(fresh, dict(name='t3', recreate=True))
    assert result['action'] == 'recreate'
    assert configuration_of(fresh, 't3') == before
    assert NGINX in before
    assert 'HOST_PORT=tcp:8083:80\n' in conf_of(fresh, 't3')
    assert http(fresh, fresh.address('host1'), port=8083).startswith('t3 generation 1')


def test_recreate_with_rollback_is_refused_before_any_change(fresh):
    play_ok(fresh, dict(name='t3', config=NGINX))
    state = host_state(fresh, 'host1')
    result = play_failed(fresh, dict(name='t3', recreate=True, rollback=True))
    assert 'recreate' in result['msg'] and 'rollback' in result['msg']
    assert host_state(fresh, 'host1') == state


# item 2 -------------------------------------------------------------------------------------
def test_taking_another_containers_address_is_refused_before_any_change(fresh):
    play_ok(fresh, dict(name='web', config=NGINX, host_address='10.231.0.1', local_address='10.231.0.2'))
    play_ok(fresh, dict(name='t2', config=NGINX, forward_ports=[dict(host_port=8082, container_port=80)]))
    state = host_state(fresh, 'host1')
    cases = [
        # running t2 takes web's local address: t2 must not be stopped
        dict(name='t2', config=NGINX, host_address='10.231.9.1', local_address='10.231.0.2'),
        # t2's local address is web's host address
        dict(name='t2', config=NGINX, host_address='10.231.9.1', local_address='10.231.0.1'),
        # a new container with web's local address
        dict(name='t4', config=NGINX, host_address='10.231.4.1', local_address='10.231.0.2'),
        # a host port t2 already forwards
        dict(name='t4', config=NGINX, forward_ports=[dict(host_port=8082, container_port=80)]),
        # the host's own address as a local address
        dict(name='t4', config=NGINX, host_address='10.231.4.1', local_address=fresh.address('host1')),
    ]
    run = fresh.playbook(bad_play('nixos_container', cases))
    messages = [module_result(run, 'bad%d' % i)['msg'] for i in range(len(cases))]
    for index, result in enumerate(module_result(run, 'bad%d' % i) for i in range(len(cases))):
        assert result['failed'] and not result['changed'], (index, result)
    assert 'container t2' in messages[0] and 'container web' in messages[0], messages[0]
    assert 'local_address 10.231.0.2' in messages[0]
    assert 'host_address of container web' in messages[1], messages[1]
    assert 'container t4' in messages[2] and 'container web' in messages[2], messages[2]
    assert 'host port 8082/tcp of container t4 is already forwarded by container t2' in messages[3]
    assert "host's own address (on eth0)" in messages[4], messages[4]
    assert host_state(fresh, 'host1') == state
    assert status(fresh, 't2') == 'up'


def test_sharing_a_host_address_between_veth_containers_is_allowed(fresh):
    play_ok(fresh, dict(name='a1', config=NGINX, host_address='10.231.5.1', local_address='10.231.5.2'))
    play_ok(fresh, dict(name='a2', config=NGINX, host_address='10.231.5.1', local_address='10.231.5.3'))
    assert http(fresh, '10.231.5.3').startswith('a2 generation 1')


def test_two_containers_on_a_bridge_with_one_address_are_refused(fresh):
    fresh.exec('host1', 'sh', '-c', 'ip link add nfbr0 type bridge && ip addr add 10.231.7.1/24 dev nfbr0 '
               '&& ip link set nfbr0 up', check=True)
    try:
        play_ok(fresh, dict(name='b1', config=NGINX, host_bridge='nfbr0', local_address='10.231.7.2/24'))
        state = host_state(fresh, 'host1')
        cases = [dict(name='b2', config=NGINX, host_bridge='nfbr0', local_address='10.231.7.2/24'),
                 dict(name='b2', config=NGINX, host_bridge='nfbr0', local_address='10.231.7.1/24')]
        run = fresh.playbook(bad_play('nixos_container', cases))
        first, second = (module_result(run, 'bad%d' % i) for i in range(2))
        assert first['failed'] and 'container b1' in first['msg'] and 'container b2' in first['msg'], first
        assert second['failed'] and "host's own address (on nfbr0)" in second['msg'], second
        assert host_state(fresh, 'host1') == state
    finally:
        fresh.exec('host1', 'nixos-container', 'destroy', 'b1')
        fresh.exec('host1', 'ip', 'link', 'del', 'nfbr0')


def test_duplicates_within_one_call_are_refused(fresh):
    state = host_state(fresh, 'host1')
    cases = [
        dict(containers=[dict(name='d1', host_address='10.231.6.1', local_address='10.231.6.2'),
                         dict(name='d2', host_address='10.231.6.5', local_address='10.231.6.2')]),
        dict(containers=[dict(name='d1', forward_ports=[dict(host_port=8086)]),
                         dict(name='d2', forward_ports=[dict(host_port=8086)])]),
    ]
    run = fresh.playbook(bad_play('nixos_containers', cases))
    for index in range(len(cases)):
        result = module_result(run, 'bad%d' % index)
        assert result['failed'] and 'container d1' in result['msg'] and 'container d2' in result['msg'], result
    assert host_state(fresh, 'host1') == state


FLEET_PLAY = '''
- hosts: nixos_hosts
  gather_facts: false
  tasks:
    - name: validate
      nixfleet.containers.fleet_validate:
        hosts: "{{ ansible_play_hosts_all }}"
      run_once: true
    - name: roll out
      nixfleet.containers.nixos_containers:
        containers: "{{ containers }}"
'''


@pytest.mark.parametrize('web, api, path, words', [
    (dict(forward_ports=[dict(host_port=8080, container_port=80)]),
     dict(forward_ports=[dict(host_port=8081), dict(host_port=8080)]),
     'containers[1].forward_ports[1].host_port', 'host port 8080/tcp is also forwarded by container web'),
    (dict(extra_veths=[dict(name='xv1', local_address='10.231.8.2')]),
     dict(extra_veths=[dict(name='xv1', local_address='10.231.9.2')]),
     'containers[1].extra_veths[0].name', 'host interface xv1 is also used by container web'),
], ids=['host port', 'extra veth'])
def test_fleet_validate_refuses_what_two_containers_of_a_host_claim(fresh, web, api, path, words):
    before = host_state(fresh, 'host1')
    spec = [dict(web, name='web', config=NGINX), dict(api, name='api', config=NGINX)]
    run = fresh.playbook(FLEET_PLAY, extra_vars=dict(containers=spec), limit='host1')
    assert run.rc != 0
    result = run.result('host1', 'validate')['result']
    assert [e['path'] for e in result['errors']] == [path], result
    assert words in result['msg']
    assert 'container api' in result['msg']
    assert [r for r in run.results if r['task'] == 'roll out'] == []
    assert host_state(fresh, 'host1') == before


# item 3 and atomic apply ---------------------------------------------------------------------
def test_values_that_can_never_start_are_refused_before_any_change(fresh):
    play_ok(fresh, dict(name='t2', config=NGINX))
    state = host_state(fresh, 'host1')
    cases = [
        (dict(host_address='10.231.3.1/32', local_address='10.231.3.2'), 'host_address'),
        (dict(host_address='10.231.3.1', local_address='10.231.3.2/24'), 'host bits under the /prefix'),
        (dict(bind_mounts=[dict(mount_point='/', host_path='/srv')]), "bind_mounts: mount point '/'"),
        (dict(bind_mounts=[dict(mount_point='/data/../etc', host_path='/srv')]), '".."'),
        (dict(bind_mounts=[dict(mount_point='/data', host_path='/srv/../etc')]), '".."'),
        (dict(tmpfs=['scratch']), "tmpfs: mount point 'scratch' must be an absolute path"),
        (dict(bind_mounts=[dict(mount_point='/data', host_path='/nonexistent-nf')]),
         'host_path /nonexistent-nf does not exist on the host'),
    ]
    run = fresh.playbook(bad_play('nixos_container', [dict(name='t2', config=NGINX, **args) for args, dummy in cases]))
    for index, (args, needle) in enumerate(cases):
        result = module_result(run, 'bad%d' % index)
        assert result['failed'] and not result['changed'] and needle in result['msg'], (args, result['msg'])
    assert host_state(fresh, 'host1') == state
    assert status(fresh, 't2') == 'up'


def test_a_failed_start_puts_the_previous_state_back_and_says_why(fresh):
    play_ok(fresh, dict(name='t2', config=NGINX, forward_ports=[dict(host_port=8082, container_port=80)]))
    conf, configuration = conf_of(fresh, 't2'), configuration_of(fresh, 't2')
    # nspawn itself refuses to start: the bind source is missing (extra_flags are passed as they are).
    result = play_failed(fresh, dict(name='t2', config=NGINX + '\nenvironment.etc.x.text = "2";',
                                     extra_flags=['--bind=/nonexistent-nf:/mnt']))
    assert 'journalctl -u container@NAME' not in result['msg'], result['msg']
    assert '/nonexistent-nf' in result['msg'], result['msg']          # nspawn's own words
    assert 'were put back and the container was started again' in result['msg'], result['msg']
    assert conf_of(fresh, 't2') == conf
    assert configuration_of(fresh, 't2') == configuration
    assert status(fresh, 't2') == 'up'
    assert result['container']['state'] == 'up' and result['generation_after'] == 1, result['container']
    assert http(fresh, fresh.address('host1'), port=8082).startswith('t2 generation 1')
    # The next run with the same spec converges to it again (nothing was lost in between).
    again = play_ok(fresh, dict(name='t2', config=NGINX, forward_ports=[dict(host_port=8082, container_port=80)]))
    assert not again['changed']


# item 8 -------------------------------------------------------------------------------------
def test_rollback_at_the_oldest_generation_and_restart_when_stopped_are_refused(fresh):
    play_ok(fresh, dict(name='t2', config=NGINX))
    state = host_state(fresh, 'host1')
    for check in (True, False):
        run = fresh.playbook(module_play(dict(name='t2', rollback=True), check=check, ignore_errors=True))
        result = module_result(run, 'task')
        assert result['failed'] and not result['changed'], result
        assert 'no generation before 1 to roll back to' in result['msg'], result['msg']
    result = play_failed(fresh, dict(name='t2', state='stopped', restart=True))
    assert 'restart: only with state=started' in result['msg']
    assert host_state(fresh, 'host1') == state


def test_rollback_shows_the_generation_in_the_diff(fresh):
    play_ok(fresh, dict(name='t2', config=NGINX))
    play_ok(fresh, dict(name='t2', config=NGINX + '\nenvironment.etc.x.text = "2";'))
    run = fresh.playbook(module_play(dict(name='t2', rollback=True), check=True), diff=True)
    diff = [d for d in module_result(run, 'task')['diff'] if d['before'] != d['after']]
    assert [d['after_header'] for d in diff] == ['/nix/var/nix/profiles/per-container/t2/system'], diff
    assert diff[0]['before'].startswith('generation 2: ') and diff[0]['after'].startswith('generation 1: ')


# item 6 -------------------------------------------------------------------------------------
ROLE_PLAY = '''
- hosts: host1
  gather_facts: false
  roles:
    - role: nixfleet.containers.container_fleet
      vars:
        container_fleet_containers: "{{ fleet }}"
        container_fleet_summary_path: "{{ summary_path }}"
'''
HTTP_CHECK = {'http': {'port': 80, 'path': '/', 'from': 'host'}, 'retries': 2, 'delay': 0.5, 'timeout': 2}
DROPIN = '/etc/systemd-mutable/system/container@web.service.d/50-nixfleet.conf'


def test_health_gate_rollback_restores_configuration_and_limits(fresh, tmp_path):
    summary = str(tmp_path / 'summary.json')
    good = dict(name='web', config=NGINX, memory_max='512M', health_check=HTTP_CHECK)
    run = fresh.playbook(ROLE_PLAY, extra_vars=dict(fleet=[good], summary_path=summary))
    assert run.rc == 0, str(run)
    configuration, dropin = configuration_of(fresh, 'web'), fresh.exec('host1', 'cat', DROPIN, check=True).stdout
    # nginx off: the health gate fails and the role rolls the container back.
    bad = dict(good, config='services.nginx.enable = false;', memory_max='256M')
    run = fresh.playbook(ROLE_PLAY, extra_vars=dict(fleet=[bad], summary_path=summary))
    assert 'rolled_back' in json.dumps(json.load(open(summary)))
    assert configuration_of(fresh, 'web') == configuration
    assert fresh.exec('host1', 'cat', DROPIN, check=True).stdout == dropin
    assert http(fresh, '10.233.1.2').startswith('web generation 1')
    # A later call that names the container without a configuration changes nothing.
    again = play_ok(fresh, dict(name='web'))
    assert not again['changed'], again['reasons']


# item 9 -------------------------------------------------------------------------------------
def test_info_refuses_a_name_that_is_a_path(fresh):
    for name in ('../resolv', '.', 'a/b'):
        result = play_failed(fresh, dict(name=name), module='nixos_container_info')
        assert 'is not a container name' in result['msg'] and 'exists' not in result, result


# item 4 -------------------------------------------------------------------------------------
def test_a_relative_or_dotted_unit_dir_is_refused(fresh):
    play_ok(fresh, dict(name='t2', config=NGINX))
    state = host_state(fresh, 'host1')
    home = fresh.exec('host1', 'sh', '-c', 'ls -A ~', check=True).stdout
    cases = [dict(name='t2', config=NGINX, auto_start=True, systemd_unit_dir=path)
             for path in ('etc/x', '/etc/systemd-mutable/../x')]
    run = fresh.playbook(bad_play('nixos_container', cases))
    for index in range(len(cases)):
        result = module_result(run, 'bad%d' % index)
        assert result['failed'] and 'systemd_unit_dir' in result['msg'], result
    assert host_state(fresh, 'host1') == state
    assert fresh.exec('host1', 'sh', '-c', 'ls -A ~', check=True).stdout == home
    assert fresh.exec('host1', 'test', '-e', '/etc/x').returncode == 1


# item 5 -------------------------------------------------------------------------------------
def test_nat_forward_with_loopback_ips_then_another_forward(fresh):
    address = fresh.address('host1')
    args = dict(external_interface='eth0', internal_interfaces=['ve-+'], forwards=[
        dict(host_port=8080, destination='10.233.1.2:80', loopback_ips=[address]),
        dict(host_port=8081, destination='10.233.1.2:81')])
    try:
        first = play_ok(fresh, args, module='nixos_container_nat')
        assert first['changed'] and first['rules_changed']
        again = play_ok(fresh, args, module='nixos_container_nat')
        assert not again['changed']
        ruleset = fresh.exec('host1', 'nft', 'list', 'table', 'ip', 'nixfleet_nat', check=True).stdout
        assert 'tcp dport 8081 dnat to 10.233.1.2:81' in ruleset
        assert 'ip daddr %s tcp dport 8080 dnat to 10.233.1.2:80' % address in ruleset
    finally:
        fresh.exec('host1', 'sh', '-c', 'nft delete table ip nixfleet_nat; '
                   'sysctl -q -w net.ipv4.conf.all.forwarding=0 net.ipv4.conf.default.forwarding=0')


# item 7 -------------------------------------------------------------------------------------
def test_drift_sees_hand_made_and_removed_forwards_and_shows_the_diff(fresh):
    from pathlib import Path
    playbooks = Path(__file__).resolve().parents[3] / 'playbooks'
    spec = [dict(name='web', config=NGINX, forward_ports=[dict(host_port=8085, container_port=80)])]
    run = fresh.playbook(str(playbooks / 'site.yml'), extra_vars=dict(containers=spec), limit='host1')
    assert run.rc == 0, str(run)

    def drift(containers, diff=False):
        run = fresh.playbook(str(playbooks / 'drift.yml'), extra_vars=dict(containers=containers), limit='host1',
                             diff=diff)
        assert run.rc == 0 and run.recap['host1']['changed'] == 0, str(run)
        return run, run.result('host1', 'Show what differs on this host')['result']['msg']

    assert drift(spec)[1] == ['no drift: 1 containers as declared']
    # A forward removed from the spec is drift (the forward is still on the host).
    run, msg = drift([dict(name='web', config=NGINX)], diff=True)
    assert len(msg) == 1 and msg[0].startswith('web: restart (') and 'HOST_PORT' in msg[0], msg
    shown = run.result('host1', 'Show the differences line by line (--diff)')['result']['msg']
    assert '-HOST_PORT=tcp:8085:80' in shown, shown
    assert 'HOST_PORT=tcp:8085:80' in conf_of(fresh, 'web')           # and nothing changed
    # A HOST_PORT added to the conf by hand is drift.
    fresh.exec('host1', 'sed', '-i', 's/^HOST_PORT=.*/HOST_PORT=tcp:8085:80,tcp:8086:80/',
               '/etc/nixos-containers/web.conf', check=True)
    assert 'HOST_PORT' in drift(spec)[1][0]


# item 11 ------------------------------------------------------------------------------------
def test_create_diff_shows_what_is_written_and_a_writable_root_bind_is_refused(fresh):
    run = fresh.playbook(module_play(dict(name='t2', config=NGINX)), diff=True)
    result = module_result(run, 'task')
    assert result['diff'][0]['after'] == conf_of(fresh, 't2')
    assert 'NIXFLEET_SYSTEM=/nix/store/' in result['diff'][0]['after']
    state = host_state(fresh, 'host1')
    result = play_failed(fresh, dict(name='t2', config=NGINX,
                                     bind_mounts=[dict(mount_point='/host', host_path='/', read_only=False)]))
    assert "read-write bind of the host's /" in result['msg']
    assert host_state(fresh, 'host1') == state


def test_check_mode_fleet_summary_says_planned(fresh, tmp_path):
    summary = tmp_path / 'summary.json'
    spec = [dict(name='web', config=NGINX, health_check=HTTP_CHECK)]
    run = fresh.playbook(ROLE_PLAY, check=True, extra_vars=dict(fleet=spec, summary_path=str(summary)))
    assert run.rc == 0, str(run)
    host = json.loads(summary.read_text())['hosts']['host1']
    assert host['status'] == 'planned' and host['containers']['web']['outcome'] == 'planned', host
    assert 'host1: planned' in run.stdout


# item 12 (what the docs now say) --------------------------------------------------------------
def test_info_local_address_keeps_the_prefix_and_is_null_without_ipv4(fresh):
    play_ok(fresh, dict(name='p4', config=NGINX, host_address='10.231.11.1', local_address='10.231.11.2/32'))
    play_ok(fresh, dict(name='p6', config=NGINX, host_address6='fc00::11:1', local_address6='fc00::11:2'))
    assert play_ok(fresh, dict(name='p4'), module='nixos_container_info')['container']['local_address'] == '10.231.11.2/32'
    assert play_ok(fresh, dict(name='p6'), module='nixos_container_info')['container']['local_address'] is None
    assert fresh.exec('host1', 'nixos-container', 'show-ip', 'p4', check=True).stdout.strip() == '10.231.11.2'


# destroy of a unit that is retrying its start ---------------------------------------------
RETRYING_PLAY = '''
- hosts: host1
  gather_facts: false
  tasks:
    - name: create, the start fails and systemd retries it (every 4 s)
      nixfleet.containers.{module}: {create}
      ignore_errors: true
    - name: unit before the destroy
      ansible.builtin.command: systemctl show -p ActiveState,SubState --value container@t5.service
      changed_when: false
      register: unit_before
    - name: destroy
      nixfleet.containers.{module}: {destroy}
'''


def test_destroy_stops_a_unit_that_is_retrying_its_start(fresh):
    """nixos-container destroy stops only an active unit (nixos-container.pl, isContainerRunning):
    a unit retrying a failed start (Restart=on-failure) would recreate the root after the destroy,
    and a failed one (start limit hit) would outlive its container."""
    fresh.fault('host1', 'start-fail', 't5')
    # waiting 4 s between attempts (caught in auto-restart); systemd's default 100 ms (caught
    # retrying or failed after five attempts)
    cases = (('nixos_container', dict, {'RestartSec': '4s'}),
             ('nixos_containers', lambda **c: dict(containers=[c]), {'CPUWeight': '50'}))
    for module, wrap, properties in cases:
        create = dict(name='t5', config=NGINX, unit_properties=properties)
        run = fresh.playbook(RETRYING_PLAY.format(module=module, create=json.dumps(wrap(**create)),
                                                  destroy=json.dumps(wrap(name='t5', state='absent'))))
        assert run.rc == 0, str(run)
        before = ' '.join(run.result('host1', 'unit before the destroy')['result']['stdout'].split())
        # any phase of a start attempt (start-pre, start, start-post) or between attempts
        assert before.startswith('activating ') or before == 'failed failed', (module, before)
        # past the unit's next restart
        unit = fresh.exec('host1', 'sh', '-c', 'sleep 6; systemctl show -p ActiveState --value container@t5.service; '
                          'ls /var/lib/nixos-containers /etc/nixos-containers', check=True).stdout.split()
        assert unit == ['inactive', '/etc/nixos-containers:', '/var/lib/nixos-containers:'], (module, before, unit)


# found by the fault soak (round 10 of seed 1234) -------------------------------------------
def profile_and_conf_system(lab, name, host='host1'):
    profile = lab.exec(host, 'readlink', '-f', '/nix/var/nix/profiles/per-container/%s/system' % name, check=True).stdout.strip()
    conf = dict(line.split('=', 1) for line in conf_of(lab, name, host).splitlines())
    return profile, conf['NIXFLEET_SYSTEM']


def test_health_gate_rollback_of_a_stopped_container_puts_everything_back(fresh, tmp_path):
    summary = str(tmp_path / 'summary.json')
    stopped = dict(name='s3', config=NGINX + '\nenvironment.etc.soak.text = "v3";', state='stopped',
                   forward_ports=[dict(host_port=8102, container_port=80)])
    run = fresh.playbook(ROLE_PLAY, extra_vars=dict(fleet=[stopped], summary_path=summary))
    assert run.rc == 0, str(run)
    conf, configuration = conf_of(fresh, 's3'), configuration_of(fresh, 's3')
    profile, system = profile_and_conf_system(fresh, 's3')
    assert profile == system
    # started, another configuration, no forward: the health gate fails and the role rolls back
    fresh.fault('host1', 'health-fail', 's3')
    started = dict(name='s3', config=NGINX + '\nenvironment.etc.soak.text = "v0";', health_check=HTTP_CHECK)
    run = fresh.playbook(ROLE_PLAY, extra_vars=dict(fleet=[started], summary_path=summary))
    assert json.load(open(summary))['hosts']['host1']['containers']['s3']['outcome'] == 'rolled_back'
    assert status(fresh, 's3') == 'down'
    assert profile_and_conf_system(fresh, 's3') == (profile, system)
    assert configuration_of(fresh, 's3') == configuration
    assert conf_of(fresh, 's3') == conf


def test_health_gate_rollback_after_an_earlier_rollback_puts_the_configuration_back(fresh, tmp_path):
    # Soak seed 1234, rounds 113 and 122: an earlier rollback left a newer generation behind the
    # current one, so the second rollback sets the system from before the run again instead of
    # going one generation down; configuration.nix kept the failed change's text.
    summary = str(tmp_path / 'summary.json')

    def rollout(variant, fault=False, **options):
        if fault:
            fresh.fault('host1', 'health-fail', 's3')
        spec = dict(name='s3', config=NGINX + '\nenvironment.etc.soak.text = "v%d";' % variant, health_check=HTTP_CHECK)
        spec.update(options)
        try:
            run = fresh.playbook(ROLE_PLAY, extra_vars=dict(fleet=[spec], summary_path=summary))
        finally:
            fresh.fault('host1', 'clear')
        return run, json.load(open(summary))['hosts']['host1']['containers']['s3']['outcome']

    run, outcome = rollout(0)
    assert run.rc == 0 and outcome == 'created', str(run)
    assert rollout(1, fault=True)[1] == 'rolled_back'
    conf, configuration = conf_of(fresh, 's3'), configuration_of(fresh, 's3')
    system = profile_and_conf_system(fresh, 's3')
    assert system[0] == system[1] and '"v0"' in configuration
    # again, with a forwarded port this time (round 122)
    assert rollout(2, fault=True, forward_ports=[dict(host_port=8102, container_port=80)])[1] == 'rolled_back'
    assert status(fresh, 's3') == 'up'
    assert profile_and_conf_system(fresh, 's3') == system
    assert configuration_of(fresh, 's3') == configuration
    assert conf_of(fresh, 's3') == conf


def test_an_extra_veth_of_another_container_is_refused_before_any_change(fresh):
    play_ok(fresh, dict(name='x1', config=NGINX, extra_veths=[dict(name='xv1', local_address='10.231.8.2')]))
    state = host_state(fresh, 'host1')
    cases = [dict(name='x2', config=NGINX, extra_veths=[dict(name='xv1', local_address='10.231.9.2')])]
    run = fresh.playbook(bad_play('nixos_container', cases))
    result = module_result(run, 'bad0')
    assert result['failed'] and 'extra veth xv1 of container x2 is already the extra veth xv1 of container x1' \
        in result['msg'], result
    assert host_state(fresh, 'host1') == state


def test_a_moved_interface_is_no_macvlan_parent_of_another_container(fresh):
    """A host interface one container moves in (interfaces) is gone from the host while it runs,
    so another container's macvlan on it could never start ("Failed to resolve interface"):
    refused before any change, in one call and against a container already there. Macvlans of
    several containers on one interface stay allowed."""
    state = host_state(fresh, 'host1')
    run = fresh.playbook(bad_play('nixos_containers', [dict(containers=[
        dict(name='m1', config=NGINX, interfaces=['eth1']), dict(name='m2', config=NGINX, macvlans=['eth1'])])]))
    result = module_result(run, 'bad0')
    assert result['failed'] and 'macvlan parent eth1 of container m2 is already the interface eth1 of container m1' \
        in result['msg'], result
    assert host_state(fresh, 'host1') == state
    play_ok(fresh, dict(name='m1', config=NGINX, macvlans=['eth1'], state='present'))
    play_ok(fresh, dict(name='m2', config=NGINX, macvlans=['eth1'], state='present'))
    state = host_state(fresh, 'host1')
    run = fresh.playbook(bad_play('nixos_container', [dict(name='m3', config=NGINX, interfaces=['eth1'])]))
    result = module_result(run, 'bad0')
    assert result['failed'] and 'interface eth1 of container m3 is already the macvlan parent eth1 of container m1' \
        in result['msg'], result
    assert host_state(fresh, 'host1') == state


def test_a_start_that_needs_a_missing_host_link_is_refused_before_any_change(fresh):
    """nspawn cannot start a container on a bridge, or with a macvlan or a moved interface, the
    host does not have ("Failed to resolve interface"): refused before the container is created,
    naming the option. Without a start (state=present) the link may come later. A running
    container whose moved interface sits in its own namespace still restarts."""
    state = host_state(fresh, 'host1')
    cases = [dict(name='l1', config=NGINX, host_bridge='nosuchbr'),
             dict(name='l2', config=NGINX, macvlans=['nosuchif']),
             dict(name='l3', config=NGINX, interfaces=['nosuchif']),
             dict(name='l4', config=NGINX, host_bridge='eth1')]
    run = fresh.playbook(bad_play('nixos_container', cases))
    for index, needle in enumerate(('host_bridge: bridge nosuchbr does not exist', 'macvlans: host interface nosuchif',
                                    'interfaces: host interface nosuchif', 'host_bridge: eth1 is not a bridge')):
        result = module_result(run, 'bad%d' % index)
        assert result['failed'] and needle in result['msg'], result
    assert host_state(fresh, 'host1') == state
    play_ok(fresh, dict(name='l1', config=NGINX, host_bridge='nosuchbr', state='present'))
    play_ok(fresh, dict(name='l5', config=NGINX, interfaces=['eth1']))
    result = play_ok(fresh, dict(name='l5', config=NGINX, interfaces=['eth1'], forward_ports=[dict(host_port=8109)]))
    assert result['action'] == 'restart', result
    assert 'eth1' in fresh.exec('host1', 'nixos-container', 'run', 'l5', '--', 'ip', 'link', check=True).stdout


def test_an_allocated_pair_stays_out_of_the_subnets_in_use(fresh):
    # The host's bridge holds 10.233.1.0/24 and a bridged container 10.233.2.0/24: the first free
    # pairs by address alone (10.233.1.1/.2, then 10.233.2.1/.2) sit inside them.
    fresh.exec('host1', 'sh', '-c', 'ip link add nfbr1 type bridge && ip addr add 10.233.1.254/24 dev nfbr1 '
               '&& ip link set nfbr1 up', check=True)
    try:
        play_ok(fresh, dict(name='b1', config=NGINX, host_bridge='nfbr1', local_address='10.233.2.5/24', state='present'))
        result = play_ok(fresh, dict(name='v1', config=NGINX, state='present'))
        conf = dict(line.split('=', 1) for line in conf_of(fresh, 'v1').splitlines() if '=' in line)
        assert (conf['HOST_ADDRESS'], conf['LOCAL_ADDRESS']) == ('10.233.3.1', '10.233.3.2'), result
    finally:
        for name in ('v1', 'b1'):
            fresh.exec('host1', 'nixos-container', 'destroy', name)
        fresh.exec('host1', 'ip', 'link', 'del', 'nfbr1')
