"""nixos_containers (the declared set of one host, one call) against the lab, on real host state."""

import json
import textwrap
import time

from host_checks import host_digest, host_state

NGINX = 'services.nginx.enable = true;'


def containers_play(args, hosts='host1', check=False, name='set', ignore_errors=False, steps=None):
    """A play running nixos_containers with ARGS; STEPS gives the four-step idempotence run."""
    lines = ['- hosts: %s' % hosts, '  gather_facts: false', '  tasks:']
    for step, step_check in (steps or [(name, check)]):
        lines += ['    - name: %s' % step,
                  '      nixfleet.containers.nixos_containers: %s' % json.dumps(args)]
        if step_check:
            lines.append('      check_mode: true')
        if ignore_errors:
            lines.append('      ignore_errors: true')
    return '\n'.join(lines) + '\n'


FOUR_STEPS = [('step1 check', True), ('step2 real', False), ('step3 repeat', False),
              ('step4 repeat in check', True)]


def result_of(run, task, host='host1'):
    record = run.result(host, task)
    result = dict(record['result'])
    result.update(changed=record['changed'], failed=record['failed'])
    return result


def status(lab, name, host='host1'):
    return lab.exec(host, 'nixos-container', 'status', name).stdout.strip()


def names(lab, host='host1'):
    return lab.exec(host, 'nixos-container', 'list', check=True).stdout.split()


def settled_state(lab, name, host='host1', timeout=30):
    """container@NAME's ActiveState once systemd stopped retrying a failed start (Restart=on-failure)."""
    deadline = time.monotonic() + timeout
    while True:
        state = lab.exec(host, 'systemctl', 'show', '-p', 'ActiveState', '--value', 'container@%s' % name,
                         check=True).stdout.strip()
        if state != 'activating' or time.monotonic() > deadline:
            return state
        time.sleep(0.2)


def conf_of(lab, name, host='host1'):
    return lab.exec(host, 'cat', '/etc/nixos-containers/%s.conf' % name, check=True).stdout


def http(lab, address, host='host1', port=80):
    return lab.exec(host, 'curl', '-s', '-m', '5', 'http://%s:%d/' % (address, port)).stdout.strip()


def conf_value(text, key):
    for line in text.splitlines():
        if line.startswith(key + '='):
            return line.split('=', 1)[1]
    return None


THREE = [
    dict(name='web1', config=NGINX),
    dict(name='web2', config=NGINX, host_address='10.233.1.1', local_address='10.233.1.2',
         forward_ports=[dict(host_port=8080, container_port=80)]),
    dict(name='web3', settings=dict(services=dict(nginx=dict(enable=True)))),
    dict(name='idle', state='present'),
]


def test_four_steps_three_hosts_one_call_each(fresh):
    run = fresh.playbook(containers_play(dict(containers=THREE), hosts='host1:host2', steps=FOUR_STEPS))
    assert run.rc == 0, str(run)
    for host in ('host1', 'host2'):
        # One module call per host and step: four task results per host, nothing else.
        assert len([r for r in run.results if r['host'] == host]) == 4
        got = [result_of(run, step[0], host)['changed'] for step in FOUR_STEPS]
        assert got == [True, True, False, False], got
        check = result_of(run, 'step1 check', host)
        assert check['summary']['counts'] == {'create': 4}
        assert check['actions'] == []
        real = result_of(run, 'step2 real', host)
        assert [real['containers'][n]['action'] for n in ('web1', 'web2', 'web3', 'idle')] == ['create'] * 4
        assert real['summary']['changed'] == ['web1', 'web2', 'web3', 'idle']
        repeat = result_of(run, 'step3 repeat', host)
        assert repeat['summary']['counts'] == {'noop': 4} and repeat['actions'] == []
        # One allocation pass: web2's explicit 10.233.1.x is claimed before web1 gets a pair,
        # and the new containers never share a pair.
        pairs = [(conf_value(conf_of(fresh, n, host), 'HOST_ADDRESS'), conf_value(conf_of(fresh, n, host), 'LOCAL_ADDRESS'))
                 for n in ('web1', 'web2', 'web3', 'idle')]
        assert pairs == [('10.233.2.1', '10.233.2.2'), ('10.233.1.1', '10.233.1.2'),
                         ('10.233.3.1', '10.233.3.2'), ('10.233.4.1', '10.233.4.2')], pairs
        assert [status(fresh, n, host) for n in ('web1', 'web2', 'web3', 'idle')] == ['up', 'up', 'up', 'down']
        assert http(fresh, '10.233.2.2', host).startswith('web1 generation 1')
        assert http(fresh, '10.233.3.2', host).startswith('web3 generation 1')
        assert http(fresh, fresh.address(host), host, port=8080).startswith('web2 generation 1')
    assert names(fresh, 'host3') == []


def test_a_change_reports_per_container_plans_and_diffs(fresh):
    fresh.playbook(containers_play(dict(containers=THREE[:3])))
    changed = [dict(THREE[0], config=NGINX + ' environment.etc.v.text = "2";'),
               dict(THREE[1], forward_ports=[]), THREE[2]]
    run = fresh.playbook(containers_play(dict(containers=changed)), diff=True)
    assert run.rc == 0, str(run)
    result = result_of(run, 'set')
    web1, web2, web3 = (result['containers'][n] for n in ('web1', 'web2', 'web3'))
    assert (web1['action'], web1['reasons']) == ('reload', ['the guest configuration changed'])
    assert (web1['generation_before'], web1['generation_after']) == (1, 2)
    assert web2['action'] == 'restart' and web2['plan']['steps'] == ['stop', 'write_conf', 'start']
    assert web3['action'] == 'noop' and not web3['changed']
    assert result['summary']['counts'] == {'reload': 1, 'restart': 1, 'noop': 1}
    assert result['summary']['changed'] == ['web1', 'web2'] and result['summary']['unchanged'] == ['web3']
    headers = [d['before_header'] for d in result['diff']]
    assert '/etc/nixos-containers/web2.conf' in headers and 'run state (web1)' in headers
    assert not any('web3' in h for h in headers)
    assert http(fresh, '10.233.2.2').startswith('web1 generation 2')
    assert 'HOST_PORT=\n' in conf_of(fresh, 'web2')


def test_brief_cuts_only_the_unchanged_entries(fresh):
    """brief=true: an unchanged container keeps action, reasons and the flags; a changed one and a
    removed one keep their full entry (facts, plan, generation) in check mode and in a real run."""
    fresh.playbook(containers_play(dict(containers=[dict(name=n, config=NGINX, state='present')
                                                    for n in ('same', 'moved', 'old')])))
    args = dict(containers=[dict(name='same', config=NGINX, state='present'),
                            dict(name='moved', config=NGINX + ' environment.etc.v.text = "2";', state='present')],
                exclusive=True, brief=True)
    for check in (True, False):
        run = fresh.playbook(containers_play(args, check=check))
        assert run.rc == 0, str(run)
        result = result_of(run, 'set')
        same, moved, old = (result['containers'][n] for n in ('same', 'moved', 'old'))
        assert same == dict(action='noop', reasons=[], changed=False, failed=False, deferred=False)
        assert moved['action'] == 'reload' and moved['changed'] and moved['plan']['steps'] == ['update']
        assert moved['container']['name'] == 'moved' and moved['generation_before'] == 1
        assert old['action'] == 'destroy' and old['plan']['steps'] == ['destroy'] and 'container' in old
        assert result['summary']['unchanged'] == ['same'] and result['summary']['changed'] == ['old', 'moved']
    full = result_of(fresh.playbook(containers_play(dict(args, brief=False))), 'set')['containers']['same']
    assert full['container']['name'] == 'same' and full['plan'] == dict(action='noop', steps=[], reasons=[])


def test_exclusive_removes_only_undeclared_imperative_containers(fresh):
    fresh.playbook(containers_play(dict(containers=[dict(name=n, config=NGINX, state='present')
                                                    for n in ('keep', 'old1', 'old2')])))
    fresh.exec('host1', 'sh', '-c', 'mkdir -p /nix/store/decl && printf "PRIVATE_NETWORK=1\\n'
               'HOST_ADDRESS=10.233.50.1\\nLOCAL_ADDRESS=10.233.50.2\\n" > /nix/store/decl/decl.conf && '
               'chmod 0444 /nix/store/decl/decl.conf && '
               'ln -s /nix/store/decl/decl.conf /etc/nixos-containers/decl.conf', check=True)
    try:
        args = dict(containers=[dict(name='keep', config=NGINX, state='present')], exclusive=True)
        before = host_digest(fresh, 'host1')
        run = fresh.playbook(containers_play(args, check=True), diff=True)
        assert run.rc == 0, str(run)
        check = result_of(run, 'set')
        assert check['changed']
        assert check['summary']['removed'] == ['old1', 'old2']
        assert check['summary']['declarative_kept'] == ['decl']
        assert check['containers']['old1']['action'] == 'destroy'
        assert check['containers']['old1']['reasons'] == [
            'exclusive=true and the container is not in the declared list']
        assert check['containers']['keep']['action'] == 'noop'
        assert 'decl' not in check['containers']
        assert host_digest(fresh, 'host1') == before          # check mode changed nothing
        run = fresh.playbook(containers_play(args))
        assert run.rc == 0, str(run)
        real = result_of(run, 'set')
        assert real['summary']['removed'] == ['old1', 'old2']
        assert sorted(names(fresh)) == ['decl', 'keep']
        assert fresh.exec('host1', 'test', '-e', '/var/lib/nixos-containers/old1').returncode == 1
        again = fresh.playbook(containers_play(args))
        assert not result_of(again, 'set')['changed']
    finally:
        fresh.exec('host1', 'rm', '-rf', '/etc/nixos-containers/decl.conf', '/nix/store/decl')


def test_only_plans_everything_and_applies_the_named(fresh):
    fresh.playbook(containers_play(dict(containers=THREE[:3])))
    web3_conf = conf_of(fresh, 'web3')
    changed = [dict(c, forward_ports=[dict(host_port=9000 + i, container_port=80)])
               for i, c in enumerate(THREE[:3])]
    run = fresh.playbook(containers_play(dict(containers=changed, only=['web1', 'web2'])))
    assert run.rc == 0, str(run)
    result = result_of(run, 'set')
    assert result['summary']['changed'] == ['web1', 'web2']
    assert result['summary']['deferred'] == ['web3']
    web3 = result['containers']['web3']
    assert web3['deferred'] and not web3['changed'] and web3['action'] == 'restart'
    assert web3['actions'] == []
    assert conf_of(fresh, 'web3') == web3_conf
    assert 'HOST_PORT=tcp:9000:80\n' in conf_of(fresh, 'web1')
    assert http(fresh, fresh.address('host1'), port=9001).startswith('web2 generation 1')
    run = fresh.playbook(containers_play(dict(containers=changed, only=['nope']), ignore_errors=True))
    failed = result_of(run, 'set')
    assert failed['failed'] and 'only: nope' in failed['msg']


def test_one_failing_container_does_not_stop_the_others(fresh):
    fresh.fault('host1', 'start-fail', 'web2')
    run = fresh.playbook(containers_play(dict(containers=THREE[:3]), ignore_errors=True))
    result = result_of(run, 'set')
    assert result['failed']
    assert result['msg'].startswith('1 of 3 containers failed (web2): web2: ')
    assert 'could not start' in result['msg']
    web2 = result['containers']['web2']
    assert web2['failed'] and web2['cmd'][-2:] == ['start', 'web2'] and web2['rc'] != 0
    assert web2['changed']                    # it was created before its start failed
    assert result['summary']['failed'] == ['web2']
    assert result['summary']['changed'] == ['web1', 'web3']
    assert status(fresh, 'web1') == 'up' and status(fresh, 'web3') == 'up'
    assert http(fresh, '10.233.3.2').startswith('web3 generation 1')
    # With the fault gone, the next run converges what failed, and only that (once systemd gave
    # up retrying: were the fault cleared during the retries, systemd itself would start it).
    assert settled_state(fresh, 'web2') == 'failed'
    fresh.clear_faults()
    run = fresh.playbook(containers_play(dict(containers=THREE[:3])))
    assert run.rc == 0, str(run)
    again = result_of(run, 'set')
    assert again['summary']['changed'] == ['web2'] and again['containers']['web2']['action'] == 'start'
    # Within 10 s of its retries systemd would refuse the start: the module resets the unit first.
    assert [argv[1:] for argv in again['containers']['web2']['actions']][:1] == [['reset-failed', 'container@web2.service']]


def test_bad_input_in_one_container_changes_nothing(fresh):
    fresh.playbook(containers_play(dict(containers=THREE[:1])))
    before = host_state(fresh, 'host1')
    for containers, needle in (
            ([THREE[0], dict(name='new', config=NGINX), dict(name='bad', forward_ports=[dict(host_port=70000)])],
             'containers[2] (bad): '),
            ([THREE[0], dict(name='new', config='services.nginx.enable = true')], 'containers[1] (new): config'),
            ([THREE[0], dict(name='web1')], 'containers[1].name: web1 is declared twice'),
            ([dict(name='bad_name')], 'containers[0].name: '),
    ):
        run = fresh.playbook(containers_play(dict(containers=containers), ignore_errors=True))
        result = result_of(run, 'set')
        assert result['failed'] and needle in result['msg'], result['msg']
        assert 'Traceback' not in json.dumps(result)
        assert host_state(fresh, 'host1') == before


def test_fleet_validate_names_host_container_and_path(fresh):
    play = textwrap.dedent('''
        - hosts: nixos_hosts
          gather_facts: false
          tasks:
            - name: validate
              nixfleet.containers.fleet_validate:
                hosts: "{{ ansible_play_hosts_all }}"
              run_once: true
              register: validation
            - name: roll out
              nixfleet.containers.nixos_containers:
                containers: "{{ validation.containers[inventory_hostname] }}"
    ''')
    good = [dict(name='web', config=NGINX, health_check=dict(http=dict(port=80, path='/', expect_status=200)))]
    bad = [dict(name='web', config=NGINX),
           dict(name='api', forward_ports=[dict(host_port=70000)], health_check=dict(tcp=dict(port=22), retries=-1))]
    before = dict((h, host_digest(fresh, h)) for h in fresh.hosts)
    run = fresh.playbook(play, extra_vars=dict(containers=good), limit='host1:host2')
    assert run.rc == 0, str(run)
    assert result_of(run, 'validate')['valid'] and 'roll out' in run.changed_tasks('host2')
    run = fresh.playbook(play, extra_vars=dict(containers=bad), limit='host3')
    assert run.rc != 0
    result = result_of(run, 'validate', host='host3')
    assert not result['valid']
    paths = sorted((e['host'], e['container'], e['path']) for e in result['errors'])
    assert paths == [('host3', 'api', 'containers[1].forward_ports[0].host_port'),
                     ('host3', 'api', 'containers[1].health_check.retries')]
    assert 'host3: container api: containers[1].forward_ports[0].host_port: 70000 is greater' in result['msg']
    with_roll_out = [r for r in run.results if r['task'] == 'roll out']
    assert with_roll_out == []                  # the rollout never started
    assert host_digest(fresh, 'host3') == before['host3']
