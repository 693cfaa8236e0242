"""The container_fleet role (and the fleet playbooks) against the lab's 3 hosts, on real host state."""

import json
import textwrap
from pathlib import Path

from host_checks import host_digest

REPO = Path(__file__).resolve().parents[3]
LABCTL = REPO / 'tests' / 'lab' / 'labctl'

HOSTS = ('host1', 'host2', 'host3')
NGINX_ON = 'services.nginx.enable = true;'
NGINX_OFF = 'services.nginx.enable = false;'
REPORT_WRITE = 'Write the summary as JSON on the controller'
REPORT_FAIL = 'Fail when the rollout did not succeed'
HTTP_CHECK = {'http': {'port': 80, 'path': '/', 'from': 'host'}, 'retries': 2, 'delay': 0.5, 'timeout': 2}

ROLE_PLAY = textwrap.dedent('''
    - hosts: nixos_hosts
      gather_facts: false
      roles:
        - role: nixfleet.containers.container_fleet
          vars:
            container_fleet_containers: "{{ fleet[inventory_hostname] | default([]) }}"
''')


def web(config=NGINX_ON, **extra):
    spec = dict(name='web', config=config, health_check=HTTP_CHECK)
    spec.update(extra)
    return spec


def same_everywhere(*specs):
    return dict((host, list(specs)) for host in HOSTS)


def rollout(lab, tmp_path, fleet, check=False, diff=False, limit=None, **variables):
    """Run the role with FLEET ({host: specs}); the run and the summary JSON it wrote."""
    path = tmp_path / 'summary.json'
    if path.exists():
        path.unlink()
    extra = dict(fleet=fleet, container_fleet_summary_path=str(path))
    extra.update(variables)
    run = lab.playbook(ROLE_PLAY, check=check, diff=diff, extra_vars=extra, limit=limit)
    summary = json.loads(path.read_text()) if path.exists() else None
    return run, summary


def digests(lab):
    return dict((host, host_digest(lab, host)) for host in HOSTS)


def outcomes(summary, name):
    return [summary['hosts'][host]['containers'][name]['outcome'] for host in HOSTS]


def http(lab, host, name='web'):
    address = lab.exec(host, 'nixos-container', 'show-ip', name, check=True).stdout.strip()
    return lab.exec(host, 'curl', '-s', '-m', '3', 'http://%s/' % address).stdout.strip()


def system(lab, host, link='system', name='web'):
    """The store path a profile link of the container points to."""
    path = '/nix/var/nix/profiles/per-container/%s/%s' % (name, link)
    return lab.exec(host, 'readlink', '-f', path, check=True).stdout.strip()


def names(lab, host):
    return lab.exec(host, 'nixos-container', 'list', check=True).stdout.split()


def remote_results(run, host):
    """The tasks that reached HOST (module runs on the host, not controller-side actions)."""
    local = ('ansible.builtin.set_fact', 'ansible.builtin.debug', 'ansible.builtin.validate_argument_spec',
             'nixfleet.containers.fleet_validate', 'ansible.builtin.include_tasks', 'ansible.builtin.fail')
    return [r['task'] for r in run.results
            if r['host'] == host and not r['skipped'] and r['action'] not in local
            and r['name'] != REPORT_WRITE]


def test_rollout_in_batches_then_no_op_and_check_mode(fresh, tmp_path):
    fleet = same_everywhere(web(service_group='web'), dict(name='api', config=NGINX_ON, service_group='api'),
                            dict(name='worker', state='present'))

    before = digests(fresh)
    run, summary = rollout(fresh, tmp_path, fleet, check=True)
    assert run.rc == 0, str(run)
    assert digests(fresh) == before, 'check mode changed a host'
    assert summary['check_mode'] is True and summary['result'] == 'success'
    assert set(outcomes(summary, 'web') + outcomes(summary, 'worker')) == {'planned'}

    run, summary = rollout(fresh, tmp_path, fleet)
    assert run.rc == 0, str(run)
    assert summary['result'] == 'success' and summary['unreachable'] == []
    # 9 changes, sizes [1, 25% = 2, 100%], the hosts taken round-robin: the canary, then never two
    # of one service group in a batch.
    assert summary['batches'] == [
        ['host1/web'], ['host2/web', 'host1/api'],
        ['host3/web', 'host2/api', 'host1/worker', 'host2/worker', 'host3/worker'], ['host3/api']]
    for host in HOSTS:
        assert summary['hosts'][host]['status'] == 'updated'
        assert set(c['outcome'] for c in summary['hosts'][host]['containers'].values()) == {'created'}
        assert summary['hosts'][host]['containers']['web']['health'] == 'passed'
        assert http(fresh, host) == 'web generation 1'
        assert sorted(names(fresh, host)) == ['api', 'web', 'worker']

    # A no-op: changed=0, one remote call per host (the plan), nothing else on the hosts.
    before = digests(fresh)
    run, summary = rollout(fresh, tmp_path, fleet)
    assert run.rc == 0, str(run)
    assert all(run.recap[host]['changed'] == 0 for host in HOSTS), run.recap
    assert summary['result'] == 'success' and summary['batches'] == []
    assert set(outcomes(summary, 'web') + outcomes(summary, 'api')) == {'unchanged'}
    for host in HOSTS:
        assert remote_results(run, host) == [
            'nixfleet.containers.container_fleet : Plan every container of this host in one call (nothing changes here)']
    assert digests(fresh) == before

    # The same without a summary file: the role ends after showing the summary, without the
    # (skipped) write and fail tasks.
    run, summary = rollout(fresh, tmp_path, fleet, container_fleet_summary_path='')
    assert run.rc == 0 and summary is None, str(run)
    assert 'host3: unchanged (3 unchanged)' in run.stdout
    assert not [r for r in run.results if r['name'] in (REPORT_WRITE, REPORT_FAIL)], run.results
    assert digests(fresh) == before

    # --check --diff of a change: planned and shown, nothing changed.
    changed = dict((host, [web(NGINX_ON + '\nenvironment.etc.release.text = "2";', service_group='web')] + specs[1:])
                   for host, specs in fleet.items())
    run, summary = rollout(fresh, tmp_path, changed, check=True, diff=True)
    assert run.rc == 0, str(run)
    assert digests(fresh) == before, 'check mode changed a host'
    assert outcomes(summary, 'web') == ['planned'] * 3 and outcomes(summary, 'api') == ['unchanged'] * 3
    plan = run.result('host2', 'Plan every container of this host in one call (nothing changes here)')
    assert plan['changed'] and any('release' in d['after'] for d in plan['diff'])


def test_broken_change_is_rolled_back_and_stops_the_rollout(fresh, tmp_path):
    run, summary = rollout(fresh, tmp_path, same_everywhere(web()), container_fleet_batches=['100%'])
    assert run.rc == 0 and summary['batches'] == [['host1/web', 'host2/web', 'host3/web']], str(run)

    # The canary breaks: rolled back to generation 1, the rollout stops, the others stay pending.
    untouched = dict((host, host_digest(fresh, host)) for host in ('host2', 'host3'))
    run, summary = rollout(fresh, tmp_path, same_everywhere(web(NGINX_OFF, service_group='web')))
    assert run.rc != 0 and 'the rollout ended with result rolled_back' in run.stdout, str(run)
    assert summary['result'] == 'rolled_back'
    assert summary['stopped']['batch'] == 1
    canary = summary['hosts']['host1']['containers']['web']
    assert (canary['outcome'], canary['health'], canary['batch']) == ('rolled_back', 'failed', 1)
    assert 'rolled back to generation 1' in canary['message']
    assert outcomes(summary, 'web') == ['rolled_back', 'pending', 'pending']
    assert [summary['hosts'][h]['containers']['web']['batch'] for h in HOSTS] == [1, 2, 3]
    assert http(fresh, 'host1') == 'web generation 1'
    assert dict((host, host_digest(fresh, host)) for host in ('host2', 'host3')) == untouched

    # With rollback_all, a failure in batch 2 also rolls back batch 1. On host1 the rollback left
    # generation 2 (broken) above the current 1: its generation-1 system comes back as a new one.
    fleet = dict(host1=[web(NGINX_ON + ' environment.etc.v.text = "2";', service_group='web')],
                 host2=[web(NGINX_OFF, service_group='web')],
                 host3=[web(NGINX_ON + ' environment.etc.v.text = "2";', service_group='web')])
    run, summary = rollout(fresh, tmp_path, fleet, container_fleet_rollback_all=True, container_fleet_fail_on_error=False)
    assert run.rc == 0, str(run)
    assert summary['result'] == 'rolled_back' and summary['stopped']['batch'] == 2
    assert outcomes(summary, 'web') == ['rolled_back', 'rolled_back', 'pending']
    assert 'container_fleet_rollback_all' in summary['hosts']['host1']['containers']['web']['message']
    assert summary['hosts']['host2']['containers']['web']['health'] == 'failed'
    assert 'its system from before the run is back' in summary['hosts']['host1']['containers']['web']['message']
    assert system(fresh, 'host1') == system(fresh, 'host1', 'system-1-link')
    assert http(fresh, 'host1') == 'web generation 4'
    assert 'rolled back to generation 1' in summary['hosts']['host2']['containers']['web']['message']
    assert [http(fresh, host) for host in ('host2', 'host3')] == ['web generation 1'] * 2


def test_start_failure_removes_the_new_container(fresh, tmp_path):
    run, summary = rollout(fresh, tmp_path, same_everywhere(web()), container_fleet_batches=['100%'])
    assert run.rc == 0, str(run)
    fresh.fault('host2', 'start-fail', 'api')
    fleet = same_everywhere(web(), dict(name='api', config=NGINX_ON, service_group='api'))
    run, summary = rollout(fresh, tmp_path, fleet)
    assert run.rc != 0 and 'the rollout ended with result failed' in run.stdout, str(run)
    assert summary['result'] == 'failed'
    assert outcomes(summary, 'api') == ['created', 'failed', 'pending']
    failed = summary['hosts']['host2']['containers']['api']
    assert 'the apply failed' in failed['message'] and 'removed again' in failed['message']
    assert summary['hosts']['host2']['status'] == 'failed'
    assert sorted(names(fresh, 'host1')) == ['api', 'web']
    assert names(fresh, 'host2') == ['web'] and names(fresh, 'host3') == ['web']


HOOK = textwrap.dedent('''
    - name: Cut host3 off after the first batch
      ansible.builtin.command:
        argv: ["{{ lab_labctl }}", fault, host3, unreachable]
      delegate_to: localhost
      run_once: true
      changed_when: true
      when: container_fleet_batch.number == 1
''')


def test_unreachable_host(fresh, tmp_path):
    fleet = same_everywhere(web(service_group='web'))

    # Unreachable before the run, with the default max_fail_percentage 0: nothing changes anywhere.
    fresh.fault('host3', 'unreachable')
    before = dict((host, host_digest(fresh, host)) for host in ('host1', 'host2'))
    run, summary = rollout(fresh, tmp_path, fleet)
    assert run.rc != 0, str(run)
    assert summary['result'] == 'failed' and summary['unreachable'] == ['host3']
    assert summary['stopped']['batch'] == 0 and 'before any change' in summary['stopped']['reason']
    assert outcomes(summary, 'web') == ['pending'] * 3
    assert dict((host, host_digest(fresh, host)) for host in ('host1', 'host2')) == before
    # Without a summary file the report does not end the role early: the play still fails.
    run, summary = rollout(fresh, tmp_path, fleet, container_fleet_summary_path='')
    assert run.rc != 0 and summary is None, str(run)
    assert 'the rollout ended with result failed: before any change' in run.result('host1', REPORT_FAIL)['result']['msg']
    fresh.fault('host3', 'clear')

    # Unreachable mid-rollout (after batch 1), within max_fail_percentage: the rest completes.
    hook = tmp_path / 'hook.yml'
    hook.write_text(HOOK)
    run, summary = rollout(fresh, tmp_path, fleet, container_fleet_max_fail_percentage=34,
                           container_fleet_batch_hook=str(hook), lab_labctl=str(LABCTL))
    assert run.rc != 0 and run.recap['host3']['unreachable'] == 1, str(run)
    assert summary['result'] == 'failed' and summary['unreachable'] == ['host3']
    assert summary['stopped'] is None
    assert outcomes(summary, 'web') == ['created', 'created', 'pending']
    assert summary['hosts']['host3']['status'] == 'unreachable'
    assert [http(fresh, host) for host in ('host1', 'host2')] == ['web generation 1'] * 2
    fresh.fault('host3', 'clear')
    assert names(fresh, 'host3') == []


def test_bad_spec_is_rejected_before_any_change(fresh, tmp_path):
    fleet = dict(host1=[dict(name='web', host_address='10.233.50.1', local_address='10.233.50.2')],
                 host2=[dict(name='api', host_address='10.233.51.1', local_address='10.233.50.2')],
                 host3=[dict(name='db', forward_ports=[dict(host_port=70000)])])
    before = digests(fresh)
    run, summary = rollout(fresh, tmp_path, fleet)
    assert run.rc != 0 and summary is None, str(run)
    assert 'the fleet spec is not valid (2 problems)' in run.stdout
    assert 'host2: container api: containers[0].local_address: 10.233.50.2 is also the local_address of ' \
           'container web on host host1' in run.stdout
    assert 'host3: container db: containers[0].forward_ports[0].host_port: 70000 is greater than the maximum' in run.stdout
    assert digests(fresh) == before


def test_site_drift_and_destroy_playbooks(fresh):
    specs = [dict(name='web', config=NGINX_ON, health_check=HTTP_CHECK), dict(name='cache', state='present')]
    playbooks = REPO / 'playbooks'
    run = fresh.playbook(str(playbooks / 'site.yml'), extra_vars=dict(containers=specs))
    assert run.rc == 0, str(run)
    assert all(sorted(names(fresh, host)) == ['cache', 'web'] for host in HOSTS)

    run = fresh.playbook(str(playbooks / 'drift.yml'), extra_vars=dict(containers=specs))
    assert run.rc == 0 and all(run.recap[h]['changed'] == 0 for h in HOSTS), str(run)
    assert run.result('host1', 'Show what differs on this host')['result']['msg'] == ['no drift: 2 containers as declared']

    # Drift made by hand is reported, and left alone.
    fresh.exec('host2', 'nixos-container', 'stop', 'web', check=True)
    before = host_digest(fresh, 'host2')
    run = fresh.playbook(str(playbooks / 'drift.yml'), extra_vars=dict(containers=specs), diff=True)
    assert run.rc == 0 and all(run.recap[h]['changed'] == 0 for h in HOSTS), str(run)
    msg = run.result('host2', 'Show what differs on this host')['result']['msg']
    assert len(msg) == 1 and msg[0].startswith('web: start (')
    assert host_digest(fresh, 'host2') == before

    run = fresh.playbook(str(playbooks / 'destroy.yml'), extra_vars=dict(containers=specs[:1]))
    assert run.rc == 0, str(run)
    assert all(names(fresh, host) == ['cache'] for host in HOSTS)
    run = fresh.playbook(str(playbooks / 'destroy.yml'),
                         extra_vars=dict(containers=specs[:1], container_fleet_exclusive=True))
    assert run.rc == 0, str(run)
    assert all(names(fresh, host) == [] for host in HOSTS)


EVALUATIONS_LOG = '/nix/var/nix/lab-evaluations.log'
BROKEN = 'services.nginx.enable = throw "the nginx module is broken";'


def evaluations(lab, host):
    """HOST's evaluations since the last call (the emulator's log, emptied)."""
    text = lab.exec(host, 'sh', '-c', 'cat %s 2>/dev/null; rm -f %s' % (EVALUATIONS_LOG, EVALUATIONS_LOG),
                    check=True).stdout
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_every_system_is_built_before_the_first_batch(fresh, tmp_path):
    for host in HOSTS:
        evaluations(fresh, host)
    # host3's second container does not build: nothing may change anywhere, canary included.
    fleet = same_everywhere(web(), dict(name='api', config=NGINX_ON))
    fleet['host3'] = fleet['host3'] + [dict(name='bad', config=BROKEN)]
    before = digests(fresh)
    run, summary = rollout(fresh, tmp_path, fleet)
    assert run.rc != 0
    assert digests(fresh) == before, 'a batch ran although a system of the rollout failed to build'
    assert summary['result'] == 'failed' and summary['stopped']['batch'] == 0
    assert 'host3/bad' in summary['stopped']['reason'] and 'the nginx module is broken' in summary['stopped']['reason']
    bad = summary['hosts']['host3']['containers']['bad']
    assert bad['outcome'] == 'failed' and 'the nginx module is broken' in bad['message']
    assert set(outcomes(summary, 'web') + outcomes(summary, 'api')) == {'pending'}

    # Fixed: each host builds each of its distinct systems once, before the batches, and the
    # batches build nothing more (web and api share a system).
    fleet['host3'][2] = dict(name='bad', config='services.openssh.enable = true;')
    for host in HOSTS:
        evaluations(fresh, host)
    run, summary = rollout(fresh, tmp_path, fleet)
    assert run.rc == 0 and summary['result'] == 'success', str(run)
    assert len(summary['batches']) >= 3
    built = dict((host, [e['kind'] for e in evaluations(fresh, host)]) for host in HOSTS)
    assert built == dict(host1=['build'], host2=['build'], host3=['build', 'build']), built
    for host in HOSTS:
        assert http(fresh, host) == 'web generation 1'
        assert system(fresh, host, name='web') == system(fresh, host, name='api')


def test_build_host_builds_each_system_once_for_the_fleet(fresh, tmp_path):
    """host3 (no containers of its own) builds; the closures reach host1 and host2, which evaluate nothing."""
    fleet_hosts = ('host1', 'host2')
    for host in HOSTS:
        evaluations(fresh, host)
    specs = [web(), dict(name='api', config=NGINX_ON), dict(name='ssh', config='services.openssh.enable = true;')]
    fleet = dict((host, list(specs)) for host in fleet_hosts)
    run, summary = rollout(fresh, tmp_path, fleet, container_fleet_build_host='host3')
    assert run.rc == 0 and summary['result'] == 'success', str(run)
    # Two distinct systems in the fleet: two evaluations in all, on the build host.
    assert [e['kind'] for e in evaluations(fresh, 'host3')] == ['build', 'build']
    assert names(fresh, 'host3') == []
    built = set(fresh.exec('host3', 'sh', '-c', 'readlink -f /nix/var/nix/profiles/nixfleet-systems/*[!k]',
                           check=True).stdout.split())
    for host in fleet_hosts:
        assert evaluations(fresh, host) == []
        assert http(fresh, host) == 'web generation 1'
        assert system(fresh, host, name='web') == system(fresh, host, name='api')
        assert set(system(fresh, host, name=n) for n in ('web', 'ssh')) == built
        # The closures came whole (the system's own tools are there) and no stream is left behind.
        assert fresh.exec(host, 'sh', '-c', 'ls /tmp/nixfleet-system-* 2>/dev/null').stdout == ''
    assert fresh.exec('host3', 'sh', '-c', 'ls /tmp/nixfleet-system-* 2>/dev/null').stdout == ''

    # A configuration the build host cannot build: nothing changes anywhere.
    fleet['host2'] = fleet['host2'] + [dict(name='bad', config=BROKEN)]
    fleet['host1'] = [web(NGINX_ON + '\nenvironment.etc.release.text = "2";')] + fleet['host1'][1:]
    before = [host_digest(fresh, host) for host in fleet_hosts]
    run, summary = rollout(fresh, tmp_path, fleet, container_fleet_build_host='host3')
    assert run.rc != 0 and summary['result'] == 'failed'
    assert [host_digest(fresh, host) for host in fleet_hosts] == before
    assert 'host2/bad' in summary['stopped']['reason'] and 'the nginx module is broken' in summary['stopped']['reason']
    assert summary['hosts']['host2']['containers']['bad']['outcome'] == 'failed'
    assert summary['hosts']['host1']['containers']['web']['outcome'] == 'pending'


def test_a_build_host_that_cannot_be_reached_stops_the_rollout_before_any_change(fresh, tmp_path):
    """Not in the inventory, or down: the rollout stops with nothing changed and a summary that says why."""
    fleet = dict(host1=[web()], host2=[web()])
    before = [host_digest(fresh, host) for host in ('host1', 'host2')]
    run, summary = rollout(fresh, tmp_path, fleet, container_fleet_build_host='nosuch')
    assert run.rc != 0 and summary is not None, str(run)
    assert summary['result'] == 'failed' and summary['stopped']['batch'] == 0, summary
    assert "container_fleet_build_host: 'nosuch' is not a host of the inventory" in summary['stopped']['reason']
    assert [summary['hosts'][host]['containers']['web']['outcome'] for host in ('host1', 'host2')] == ['failed'] * 2
    assert [host_digest(fresh, host) for host in ('host1', 'host2')] == before

    fresh.fault('host3', 'unreachable')
    try:
        # The build host need not be in the play: a dedicated builder that is down.
        run, summary = rollout(fresh, tmp_path, fleet, limit='host1,host2', container_fleet_build_host='host3')
    finally:
        fresh.fault('host3', 'clear')
    assert run.rc != 0 and summary is not None, str(run)
    assert summary['result'] == 'failed' and summary['stopped']['batch'] == 0, summary
    assert 'the build host host3 is unreachable' in summary['stopped']['reason']
    assert summary['unreachable'] == [], summary
    assert [host_digest(fresh, host) for host in ('host1', 'host2')] == before


def test_a_batch_hook_that_does_not_exist_is_refused_before_any_change(fresh, tmp_path):
    fleet = same_everywhere(web())
    before = digests(fresh)
    run, summary = rollout(fresh, tmp_path, fleet, container_fleet_batch_hook=str(tmp_path / 'no-such-hook.yml'))
    assert run.rc != 0, str(run)
    assert 'container_fleet_batch_hook: %s is not a file on the controller' % (tmp_path / 'no-such-hook.yml') in run.stdout
    assert digests(fresh) == before


def test_a_summary_path_that_cannot_be_written_is_refused_before_any_change(fresh, tmp_path):
    fleet = same_everywhere(web())
    before = digests(fresh)
    path = tmp_path / 'no-such-directory' / 'summary.json'
    run, dummy = rollout(fresh, tmp_path, fleet, container_fleet_summary_path=str(path))
    assert run.rc != 0, str(run)
    assert 'container_fleet_summary_path: %s is not in a directory of the controller' % path in run.stdout
    assert digests(fresh) == before
