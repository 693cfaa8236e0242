# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The container_fleet role's build phase: a failed build stops the rollout before any change."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.nixfleet.containers.plugins.filter.fleet_build import (
    FilterModule,
    build_failures,
    fleet_build_host_result,
    fleet_build_outcomes,
    fleet_build_plan,
    fleet_built,
)
from ansible_collections.nixfleet.containers.plugins.module_utils._build import shared_configuration, system_key

STATE = dict(batches=[['host1/web']], schedule=[dict(number=1, hosts=dict(host1=['web']))], problems={},
             stopped=False, stopped_at=None, reason=None, max_fail_percentage=0)
NIX = 'its system failed to build (nothing was changed): error: the nginx module is broken'


def failed_build():
    return dict(failed=True, msg='1 of 2 containers failed (bad): ...',
                containers=dict(bad=dict(action='create', failed=True, msg=NIX),
                                web=dict(action='create', failed=False, deferred=True)))


def test_a_failed_build_stops_before_any_change_naming_the_container_and_nix():
    hostvars = dict(host1=dict(container_fleet_built=dict(changed=False, systems={'k': '/nix/store/x'})),
                    host2=dict(container_fleet_built=failed_build()),
                    host3=dict())
    state = fleet_built(STATE, hostvars, ['host1', 'host2', 'host3'])
    assert state['stopped'] and state['stopped_at'] == 0
    assert state['reason'] == 'before any change: a system of the rollout failed to build: host2/bad: ' + NIX
    assert STATE['stopped'] is False    # the input is not changed


def test_good_or_skipped_builds_and_lost_hosts_do_not_stop():
    hostvars = dict(host1=dict(container_fleet_built=dict(skipped=True)), host2=dict(container_fleet_built=None))
    assert fleet_built(STATE, hostvars, ['host1', 'host2']) == STATE
    # A host that left the play is not looked at; a stopped rollout stays as it is.
    assert fleet_built(STATE, dict(host2=dict(container_fleet_built=failed_build())), ['host1']) == STATE
    stopped = dict(STATE, stopped=True, stopped_at=0, reason='before any change: lost hosts')
    assert fleet_built(stopped, dict(host1=dict(container_fleet_built=failed_build())), ['host1']) == stopped


def test_a_build_call_that_failed_as_a_whole_names_the_host():
    assert build_failures(dict(failed=True, msg='nix-env was not found')) == [(None, 'nix-env was not found')]
    assert build_failures(dict(unreachable=True, msg='ssh: no route')) == [(None, 'ssh: no route')]
    hostvars = dict(host1=dict(container_fleet_built=dict(failed=True, msg='nix-env was not found')))
    assert fleet_built(STATE, hostvars, ['host1'])['reason'].endswith(': host1: nix-env was not found')


def test_the_outcomes_of_a_failed_build_have_nothing_to_roll_back():
    plan = dict(containers=dict(bad=dict(action='create'), web=dict(action='create')))
    assert fleet_build_outcomes(failed_build(), plan) == dict(
        bad=dict(outcome='failed', batch=None, action='create', health=None, message=NIX, rollback=False, undo=None))
    assert fleet_build_outcomes(dict(changed=False), plan) == {}
    names = ['fleet_build_host_result', 'fleet_build_outcomes', 'fleet_build_plan', 'fleet_built']
    assert sorted(FilterModule().filters()) == names


def planned(*names, **steps):
    return dict(containers=dict((n, dict(action='create', changed=True, plan=dict(steps=steps.get(n, ['create']))))
                                for n in names))


def test_the_build_plan_has_each_distinct_system_once_with_the_hosts_that_need_it():
    containers = dict(
        host1=[dict(name='a', config='services.nginx.enable = true;'), dict(name='b', config='x = 1;'),
               dict(name='f', config_file='/etc/web.nix'), dict(name='g', flake='/srv/flake')],
        host2=[dict(name='a', config='services.nginx.enable = true;'), dict(name='s', settings=dict(x=1)),
               dict(name='r', config='x = 1;')])
    hostvars = dict(host1=dict(container_fleet_plan=planned('a', 'b', 'f', 'g')),
                    host2=dict(container_fleet_plan=planned('a', 's', 'r', r=['rollback', 'write_configuration'])))
    plan = fleet_build_plan(containers, hostvars, ['host1', 'host2'])
    # a twice (one system), b; s is the same text as b (settings render as "x = 1;"); f, g and the rollback of r
    # are not the build host's.
    assert [sorted(s['containers']) for s in plan['systems']] == [['host1/a', 'host2/a'], ['host1/b', 'host2/s']]
    nginx = plan['systems'][0]
    assert nginx['key'] == system_key(shared_configuration('services.nginx.enable = true;'))
    assert nginx['nixos'] == '<nixpkgs/nixos>' and nginx['profile'].endswith('/' + nginx['key'])
    assert plan['hosts'] == dict(host1=[nginx['key'], plan['systems'][1]['key']],
                                 host2=[nginx['key'], plan['systems'][1]['key']])
    # An unchanged container or a host that left the play needs nothing.
    hostvars['host2']['container_fleet_plan']['containers']['s']['changed'] = False
    assert fleet_build_plan(containers, hostvars, ['host2'])['hosts'] == dict(host2=[nginx['key']])


def test_each_host_takes_its_share_of_the_build_hosts_work():
    plan = dict(systems=[dict(key='k1', containers=['host1/a', 'host2/a']), dict(key='k2', containers=['host2/b'])],
                hosts=dict(host1=['k1'], host2=['k1', 'k2']))
    builds = dict(results=[dict(item=dict(key='k1'), failed=False, stdout='/nix/store/aaa-nixos-system-unnamed\n'),
                           dict(item=dict(key='k2'), failed=False, stdout='/nix/store/bbb-nixos-system-unnamed\n')])
    assert fleet_build_host_result(plan, builds, 'host1') == dict(
        failed=False, changed=False, systems=dict(k1='/nix/store/aaa-nixos-system-unnamed'))
    assert fleet_build_host_result(plan, builds, 'host3')['systems'] == {}
    builds['results'][1] = dict(item=dict(key='k2'), failed=True, rc=1, stdout='',
                                stderr='error:\n  … while evaluating\n  error: the nginx module is broken\n')
    broken = fleet_build_host_result(plan, builds, 'host2')
    assert broken['failed'] and list(broken['containers']) == ['b']
    assert broken['containers']['b']['msg'].endswith(': error: the nginx module is broken')
    assert fleet_build_outcomes(broken, planned('b'))['b']['outcome'] == 'failed'
    assert not fleet_build_host_result(plan, builds, 'host1')['failed']


def test_a_build_host_that_is_not_in_the_inventory_or_cannot_be_reached_builds_nothing():
    containers = dict(host1=[dict(name='a', config='x = 1;')])
    hostvars = dict(host1=dict(container_fleet_plan=planned('a')), builder={})
    assert 'error' not in fleet_build_plan(containers, hostvars, ['host1'], 'builder')
    plan = fleet_build_plan(containers, hostvars, ['host1'], 'nosuch')
    assert plan['error'] == "container_fleet_build_host: 'nosuch' is not a host of the inventory"
    # Its builds were skipped: every container of the host fails with the plan's error.
    skipped = dict(results=[dict(item=dict(key=plan['systems'][0]['key']), skipped=True)], skipped=True)
    result = fleet_build_host_result(plan, skipped, 'host1', 'nosuch')
    assert result['failed'] and result['containers']['a']['msg'] == (
        "container_fleet_build_host: 'nosuch' is not a host of the inventory (nothing was changed)")
    del plan['error']
    assert fleet_build_host_result(plan, skipped, 'host1', 'builder')['containers']['a']['msg'] == (
        'its system was not built on the build host (nothing was changed)')
    unreachable = dict(results=[dict(item=dict(key=plan['systems'][0]['key']), unreachable=True,
                                     msg='Failed to connect to the host via ssh:\n timed out')])
    assert fleet_build_host_result(plan, unreachable, 'host1', 'builder')['containers']['a']['msg'] == (
        'the build host builder is unreachable (nothing was changed): Failed to connect to the host via ssh: timed out')
