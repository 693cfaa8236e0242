# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The container_fleet role's build phase: a failed build stops the rollout before any change."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.nixfleet.containers.plugins.filter.fleet_build import (
    FilterModule,
    build_failures,
    fleet_build_outcomes,
    fleet_built,
)

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
    assert sorted(FilterModule().filters()) == ['fleet_build_outcomes', 'fleet_built']
