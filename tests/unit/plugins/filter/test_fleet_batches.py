# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The container_fleet role's pure logic: batches, gates, outcomes, rollback, progress, summary."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json

import pytest
from hypothesis import given, settings, strategies as st
from ansible.errors import AnsibleFilterError

from ansible_collections.nixfleet.containers.plugins.filter.fleet_batches import (
    FilterModule,
    batch_sizes,
    fleet_batches,
    fleet_gate,
    fleet_order,
    fleet_outcomes,
    fleet_progress,
    fleet_report,
    fleet_rolled_back,
    fleet_summary,
    fleet_undo,
    host_changes,
    make_batches,
    round_robin,
    size_of,
    undo_item,
)

HOSTS = ['host1', 'host2', 'host3']


# batch sizes --------------------------------------------------------------------------------

@pytest.mark.parametrize('sizes,total,expected', [
    ([1, '25%', '100%'], 3, [1, 1, 1]),
    ([1, '25%', '100%'], 40, [1, 10, 29]),
    ([1, '25%', '100%'], 1, [1]),
    ([2], 5, [2, 2, 1]),
    (['50%'], 5, [2, 2, 1]),
    (['12.5%', 3], 16, [2, 3, 3, 3, 3, 2]),
    (['3', '100%'], 4, [3, 1]),
    ([1, '25%', '100%'], 0, []),
])
def test_batch_sizes(sizes, total, expected):
    assert batch_sizes(sizes, total) == expected


@pytest.mark.parametrize('sizes', [[], '25%', None, [0], [-1], ['0%'], ['101%'], ['abc'], [True], ['1.5'], [{}]])
def test_bad_batch_sizes_name_the_variable(sizes):
    with pytest.raises(AnsibleFilterError, match='container_fleet_batches'):
        batch_sizes(sizes, 10)


# batches ------------------------------------------------------------------------------------

def change(change_id, group=None):
    return dict(id=change_id, group=group)


def test_canary_then_one_per_service_group_per_batch():
    changes = [change('host1/web', 'web'), change('host1/cache', 'cache'), change('host2/web', 'web'),
               change('host2/cache', 'cache'), change('host3/web', 'web'), change('host3/cache', 'cache')]
    assert make_batches(changes, [1, '25%', '100%']) == [
        ['host1/web'], ['host1/cache'], ['host2/web', 'host2/cache'], ['host3/web', 'host3/cache']]


def test_a_pushed_change_is_first_in_the_next_batch():
    changes = [change('h1/a', 'g'), change('h2/a', 'g'), change('h1/b'), change('h2/b'), change('h3/b')]
    assert make_batches(changes, [3]) == [['h1/a', 'h1/b', 'h2/b'], ['h2/a', 'h3/b']]


def test_no_changes_no_batches():
    assert make_batches([], [1, '25%', '100%']) == []


CHANGES = st.lists(st.tuples(st.integers(1, 4), st.sampled_from([None, 'web', 'db', 'cache'])),
                   max_size=25).map(lambda items: [change('host%d/c%d' % (host, i), group)
                                                   for i, (host, group) in enumerate(items)])
SIZES = st.lists(st.one_of(st.integers(1, 7), st.integers(1, 100).map(lambda p: '%d%%' % p)), min_size=1, max_size=4)


@settings(max_examples=200, deadline=None)
@given(CHANGES, SIZES)
def test_batches_properties(changes, sizes):
    batches = make_batches(changes, sizes)
    flat = [i for batch in batches for i in batch]
    # every change exactly once, no empty batch, deterministic
    assert sorted(flat) == sorted(c['id'] for c in changes)
    assert all(batches)
    assert make_batches(list(changes), list(sizes)) == batches
    groups = dict((c['id'], c['group']) for c in changes)
    planned = batch_sizes(sizes, len(changes))
    for index, batch in enumerate(batches):
        # never two containers of one service group in a batch
        named = [groups[i] for i in batch if groups[i] is not None]
        assert len(named) == len(set(named))
        # never more than the batch's size (the last size repeats)
        assert len(batch) <= size_of(sizes[min(index, len(sizes) - 1)], len(changes))
        # the order of the changes is kept inside a batch
        order = [c['id'] for c in changes]
        assert batch == sorted(batch, key=order.index)
    if not any(groups.values()):
        # without groups the batches are exactly the sizes
        assert [len(b) for b in batches] == planned
    if changes:
        # the canary is the first change
        assert batches[0][0] == changes[0]['id']


def test_round_robin_takes_each_hosts_next_change_in_turn():
    assert round_robin([['a1', 'a2', 'a3'], [], ['c1'], ['d1', 'd2']]) == ['a1', 'c1', 'd1', 'a2', 'd2', 'a3']
    assert round_robin([]) == [] and round_robin([[], []]) == []


PER_HOST = st.lists(st.lists(st.integers(0, 9), max_size=8), max_size=5).map(
    lambda hosts: [['h%d/%d-%d' % (h, i, v) for i, v in enumerate(values)] for h, values in enumerate(hosts)])


@settings(max_examples=200, deadline=None)
@given(PER_HOST)
def test_round_robin_properties(per_host):
    merged = round_robin(per_host)
    # every change once, each host's own order kept
    assert sorted(merged) == sorted(c for changes in per_host for c in changes)
    for changes in per_host:
        assert [c for c in merged if c in changes] == changes
    # balanced: in every prefix, a host is at most one change ahead of a host that has changes left
    for end in range(len(merged) + 1):
        taken = [len([c for c in merged[:end] if c in changes]) for changes in per_host]
        for a, changes_a in enumerate(per_host):
            for b, changes_b in enumerate(per_host):
                if taken[b] < len(changes_b):
                    assert taken[a] <= taken[b] + 1


# plans -> schedule --------------------------------------------------------------------------

def plan_entry(action='noop', changed=None, **extra):
    entry = dict(action=action, reasons=[] if action == 'noop' else ['because'],
                 changed=action != 'noop' if changed is None else changed)
    entry.update(extra)
    return entry


def plan_of(**entries):
    return dict(changed=any(e['changed'] for e in entries.values()), containers=entries)


def hostvars_for(specs, plans, outcomes=None):
    data = {}
    for host in specs:
        data[host] = dict(container_fleet_spec=specs[host], container_fleet_outcomes=(outcomes or {}).get(host, {}))
        if host in plans:
            data[host]['container_fleet_plan'] = plans[host]
    return data


WEB = dict(name='web', service_group='web', health_check=dict(http=dict(port=80)))
CACHE = dict(name='cache', service_group='cache')


def test_host_changes_removals_first_then_spec_order_only_changed():
    plan = plan_of(cache=plan_entry('reload'), web=plan_entry('create'), old=plan_entry('destroy'),
                   idle=plan_entry())
    spec = [WEB, CACHE, dict(name='idle')]
    assert host_changes('h', spec, plan) == [
        dict(id='h/old', host='h', name='old', group=None), dict(id='h/web', host='h', name='web', group='web'),
        dict(id='h/cache', host='h', name='cache', group='cache')]


def test_schedule_from_every_hosts_plan():
    specs = dict((h, [WEB, CACHE]) for h in HOSTS)
    plans = dict((h, plan_of(web=plan_entry('reload'), cache=plan_entry())) for h in HOSTS)
    state = fleet_batches(hostvars_for(specs, plans), HOSTS, HOSTS, [1, '25%', '100%'])
    assert state['batches'] == [['host1/web'], ['host2/web'], ['host3/web']]
    assert state['schedule'] == [dict(number=1, hosts={'host1': ['web']}), dict(number=2, hosts={'host2': ['web']}),
                                 dict(number=3, hosts={'host3': ['web']})]
    assert not state['stopped'] and state['problems'] == {}
    json.dumps(state)


def test_batches_are_spread_over_the_hosts_round_robin():
    """Four changes per host: the canary on host1, then each batch takes every host's next changes
    (a batch filled host by host would run on one host while the others wait)."""
    specs = dict((h, [dict(name='c%d' % i) for i in range(4)]) for h in HOSTS)
    plans = dict((h, plan_of(**dict(('c%d' % i, plan_entry('reload')) for i in range(4)))) for h in HOSTS)
    state = fleet_batches(hostvars_for(specs, plans), HOSTS, HOSTS, [1, '25%', '100%'])
    assert state['batches'] == [['host1/c0'], ['host2/c0', 'host3/c0', 'host1/c1'],
                                ['host2/c1', 'host3/c1', 'host1/c2', 'host2/c2', 'host3/c2', 'host1/c3', 'host2/c3',
                                 'host3/c3']]
    assert state['schedule'][1] == dict(number=2, hosts={'host1': ['c1'], 'host2': ['c0'], 'host3': ['c0']})


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 12), min_size=1, max_size=5), SIZES)
def test_every_batch_is_spread_over_the_hosts(counts, sizes):
    """Without service groups, the hosts' shares of a batch differ by at most one, except for hosts
    that have no change left."""
    hosts = ['host%d' % (i + 1) for i in range(len(counts))]
    specs = dict((h, [dict(name='c%d' % i) for i in range(n)]) for h, n in zip(hosts, counts))
    plans = dict((h, plan_of(**dict(('c%d' % i, plan_entry('reload')) for i in range(n)))) for h, n in zip(hosts, counts))
    state = fleet_batches(hostvars_for(specs, plans), hosts, hosts, sizes)
    left = dict(zip(hosts, counts))
    for batch in state['batches']:
        share = dict((h, len([c for c in batch if c.startswith(h + '/')])) for h in hosts)
        busy = [h for h in hosts if left[h] > share[h]]    # hosts with changes left after this batch
        for h in hosts:
            for other in busy:
                assert share[h] <= share[other] + 1
        for h in hosts:
            left[h] -= share[h]
    assert not any(left.values())


def test_an_unreachable_host_stops_the_rollout_before_any_change_by_default():
    specs = dict((h, [WEB]) for h in HOSTS)
    plans = dict((h, plan_of(web=plan_entry('reload'))) for h in HOSTS[:2])
    plans['host3'] = dict(unreachable=True, msg='Connection timed out', changed=False)
    state = fleet_batches(hostvars_for(specs, plans), HOSTS, HOSTS[:2], [1])
    assert state['batches'] == [['host1/web'], ['host2/web']]
    assert state['problems'] == {'host3': 'unreachable: Connection timed out'}
    assert state['stopped'] and state['stopped_at'] == 0
    assert state['reason'] == ('before any change: host3 unreachable: Connection timed out (1 of 3 hosts, 33% > '
                               'container_fleet_max_fail_percentage 0%)')
    tolerant = fleet_batches(hostvars_for(specs, plans), HOSTS, HOSTS[:2], [1], 34)
    assert not tolerant['stopped']


def test_a_failed_plan_counts_as_a_lost_host():
    specs = dict((h, [WEB]) for h in HOSTS)
    plans = dict((h, plan_of(web=plan_entry('reload'))) for h in HOSTS)
    plans['host2'] = dict(failed=True, msg='containers[0] (web): config: the Nix text does not parse')
    state = fleet_batches(hostvars_for(specs, plans), HOSTS, HOSTS, [1], 50)
    assert state['problems'] == {'host2': 'the plan failed: containers[0] (web): config: the Nix text does not parse'}
    assert state['batches'] == [['host1/web'], ['host3/web']] and not state['stopped']


@pytest.mark.parametrize('value', [-1, 101, 'x', None])
def test_bad_max_fail_percentage(value):
    with pytest.raises(AnsibleFilterError, match='container_fleet_max_fail_percentage'):
        fleet_batches({}, [], [], [1], value)


# health gates -------------------------------------------------------------------------------

def applied_entry(changed=True, failed=False, running=True, local_address='10.233.1.2', **extra):
    entry = dict(changed=changed, failed=failed, container=dict(running=running, local_address=local_address))
    entry.update(extra)
    return entry


def test_gate_builds_every_kind_of_check():
    spec = [
        dict(name='web', health_check=dict(http=dict(port=8080, path='/health', expect_status=[200, 204]),
                                           retries=2, delay=0.5, timeout=1.2)),
        dict(name='api', health_check=dict(http=dict(url='https://api.example/', from_='x'), tcp=dict(port=5432))),
        dict(name='ctl', health_check=dict(http=dict(port=80, **{'from': 'controller'}), command=['systemctl', 'is-active', 'x'])),
        dict(name='hostnet', health_check=dict(http=dict(port=80), tcp=dict(port=22, host='10.0.0.9'))),
    ]
    spec[1]['health_check']['http'].pop('from_')
    applied = dict(containers=dict(
        web=applied_entry(local_address='10.233.1.2/24'), api=applied_entry(local_address='10.233.2.2'),
        ctl=dict(changed=True, failed=False, container=dict(running=True, local_address6='fc00::2/64')),
        hostnet=applied_entry(local_address=None)))
    gate = fleet_gate(spec, applied, ['web', 'api', 'ctl', 'hostnet'], 10, 1, 5, '10.250.0.11')
    assert gate['http_host'] == [
        dict(name='web', retries=2, delay=0.5, timeout=2, url='http://10.233.1.2:8080/health', status=[200, 204]),
        dict(name='api', retries=10, delay=1.0, timeout=5, url='https://api.example/', status=[200]),
        dict(name='hostnet', retries=10, delay=1.0, timeout=5, url='http://127.0.0.1:80/', status=[200])]
    assert gate['http_controller'] == [
        dict(name='ctl', retries=10, delay=1.0, timeout=5, url='http://[fc00::2]:80/', status=[200])]
    assert gate['tcp'] == [dict(name='api', retries=10, delay=1.0, timeout=5, host='10.233.2.2', port=5432),
                           dict(name='hostnet', retries=10, delay=1.0, timeout=5, host='10.0.0.9', port=22)]
    assert gate['command'] == [dict(name='ctl', retries=10, delay=1.0, timeout=5, command=['systemctl', 'is-active', 'x'])]


def test_host_network_checked_from_the_controller_uses_the_hosts_address():
    spec = [dict(name='w', health_check=dict(http={'port': 80, 'from': 'controller'}))]
    gate = fleet_gate(spec, dict(containers=dict(w=applied_entry(local_address=None))), ['w'], host_address='10.250.0.11')
    assert gate['http_controller'][0]['url'] == 'http://10.250.0.11:80/'


@pytest.mark.parametrize('entry', [
    None, applied_entry(failed=True), applied_entry(changed=False), applied_entry(running=False)])
def test_no_gate_for_failed_unchanged_stopped_or_missing(entry):
    spec = [dict(name='w', health_check=dict(tcp=dict(port=1)))]
    applied = dict(containers=dict(w=entry) if entry else {})
    assert fleet_gate(spec, applied, ['w']) == dict(http_host=[], http_controller=[], tcp=[], command=[])


def test_no_gate_without_health_check_or_outside_the_batch():
    applied = dict(containers=dict(a=applied_entry(), b=applied_entry()))
    spec = [dict(name='a'), dict(name='b', health_check=dict(tcp=dict(port=1)))]
    assert fleet_gate(spec, applied, ['a']) == dict(http_host=[], http_controller=[], tcp=[], command=[])


# outcomes -----------------------------------------------------------------------------------

FACTS_BEFORE = dict(running=True, generation=2, host_address='10.233.1.1', local_address='10.233.1.2',
                    forward_ports=[dict(protocol='tcp', host_port=8080, container_port=80)], private_network=True,
                    bind_mounts=[], extra_flags=[], auto_start=False, host_bridge=None, name='web', state='up')
PLAN = plan_of(
    web=plan_entry('reload', generation_before=2, container=FACTS_BEFORE),
    new=plan_entry('create'),
    old=plan_entry('destroy', generation_before=1, container=dict(running=False, generation=1)),
    port=plan_entry('restart', generation_before=2, container=dict(FACTS_BEFORE, running=False)),
)


def checks(*results):
    return [dict(results=list(results)), dict(skipped=True, results=[]), dict(changed=False, skipped=True)]


def check_result(name, failed, msg='', retries=2):
    return dict(item=dict(name=name, url='http://10.233.1.2:80/', retries=retries), failed=failed, msg=msg)


def test_outcomes_of_a_healthy_batch():
    applied = dict(containers=dict(web=applied_entry(generation_after=3), new=applied_entry(),
                                   old=dict(changed=True, failed=False, container={}),
                                   port=applied_entry(changed=False)))
    out = fleet_outcomes(PLAN, applied, checks(check_result('web', False)), ['old', 'web', 'new', 'port'], 2)
    assert dict((n, (o['outcome'], o['health'], o['rollback'])) for n, o in out.items()) == dict(
        web=('updated', 'passed', False), new=('created', None, False), old=('removed', None, False),
        port=('unchanged', None, False))
    assert out['web']['batch'] == 2 and out['web']['action'] == 'reload'
    assert out['web']['undo'] == dict(name='web', state='started', rollback=True, host_address='10.233.1.1',
                                      local_address='10.233.1.2', private_network=True, bind_mounts=[], extra_flags=[],
                                      auto_start=False,
                                      forward_ports=[dict(protocol='tcp', host_port=8080, container_port=80)])
    assert out['new']['undo'] == dict(name='new', state='absent')
    assert out['old']['undo'] is None and out['port']['undo'] is None


def test_outcomes_of_a_broken_batch():
    applied = dict(containers=dict(
        web=applied_entry(generation_after=3),
        new=applied_entry(failed=True, msg='nixos-container start new failed', changed=True)))
    out = fleet_outcomes(PLAN, applied, checks(check_result('web', True, 'Status code was 500\nand not [200]')),
                         ['web', 'new'], 1)
    assert (out['web']['outcome'], out['web']['health'], out['web']['rollback']) == ('unhealthy', 'failed', True)
    assert out['web']['message'] == ('health check failed: GET http://10.233.1.2:80/ (3 attempts): '
                                     'Status code was 500 and not [200]')
    assert (out['new']['outcome'], out['new']['rollback']) == ('failed', True)
    assert out['new']['message'] == 'the apply failed: nixos-container start new failed'


def test_a_failed_call_fails_every_container_without_rollback():
    out = fleet_outcomes(PLAN, dict(failed=True, msg='cannot read the host'), [], ['web', 'new'], 1)
    assert [(o['outcome'], o['rollback'], o['undo'], o['message']) for o in out.values()] == [
        ('failed', False, None, 'the apply failed: cannot read the host')] * 2


def test_undo_without_a_new_generation_restores_the_settings_only():
    item = undo_item('port', PLAN['containers']['port'], applied_entry(container=dict(generation=2)))
    assert 'rollback' not in item and item['state'] == 'stopped' and item['host_address'] == '10.233.1.1'
    assert undo_item('x', plan_entry('reload'), None) is None
    assert undo_item('x', plan_entry(), None) is None


def test_undo_after_an_earlier_rollback_sets_the_system_from_before():
    # Generations 1 and 2 exist, the profile was rolled back to 1; this run made 3. A rollback
    # would land on 2 (the broken one): the system of 1 is set again instead.
    facts = dict(FACTS_BEFORE, generation=1, system_path='/nix/store/aaa-nixos-system-web',
                 generations=[dict(number=1, path='/nix/store/aaa-nixos-system-web'),
                              dict(number=2, path='/nix/store/bbb-nixos-system-web')])
    before = plan_entry('reload', generation_before=1, container=facts)
    item = undo_item('web', before, applied_entry(generation_after=3))
    assert item['system_path'] == '/nix/store/aaa-nixos-system-web' and 'rollback' not in item
    # its configuration.nix comes back with it (soak seed 1234, rounds 113 and 122)
    assert 'config' not in item
    before['container'] = dict(facts, configuration='services.nginx.enable = true;')
    item = undo_item('web', before, applied_entry(generation_after=3))
    assert item['config'] == 'services.nginx.enable = true;' and item['system_path'] == facts['system_path']
    # In a straight line (2 was current, the run made 3) the rollback is right.
    facts = dict(facts, generation=2, system_path='/nix/store/bbb-nixos-system-web')
    item = undo_item('web', plan_entry('reload', generation_before=2, container=facts), applied_entry(generation_after=3))
    assert item['rollback'] is True and 'system_path' not in item
    outcomes = dict(web=dict(outcome='updated', message=None, undo=dict(name='web', system_path='/nix/store/aaa')))
    after = fleet_rolled_back(outcomes, [outcomes['web']['undo']], dict(containers=dict(web=dict(generation_after=4))), 'w')
    assert after['web']['message'] == 'w; its system from before the run is back (/nix/store/aaa, as generation 4)'


def test_undo_selects_broken_then_everything_that_moved():
    outcomes = dict(
        a=dict(outcome='unhealthy', rollback=True, undo=dict(name='a', rollback=True)),
        b=dict(outcome='updated', rollback=False, undo=dict(name='b', rollback=True)),
        c=dict(outcome='created', rollback=False, undo=dict(name='c', state='absent')),
        d=dict(outcome='removed', rollback=False, undo=None),
        e=dict(outcome='failed', rollback=False, undo=None),
        f=dict(outcome='rolled_back', rollback=False, undo=None))
    assert [i['name'] for i in fleet_undo(outcomes)] == ['a']
    assert [i['name'] for i in fleet_undo(outcomes, True)] == ['a', 'b', 'c']


def test_rolled_back_outcomes():
    outcomes = dict(
        web=dict(outcome='unhealthy', batch=1, health='failed', message='health check failed: x', rollback=True,
                 undo=dict(name='web', rollback=True)),
        new=dict(outcome='failed', batch=1, health=None, message='the apply failed: y', rollback=True,
                 undo=dict(name='new', state='absent')),
        api=dict(outcome='updated', batch=1, health='passed', message=None, rollback=False,
                 undo=dict(name='api', state='started')),
        db=dict(outcome='updated', batch=1, health=None, message=None, rollback=False, undo=dict(name='db')))
    items = [o['undo'] for o in outcomes.values()]
    result = dict(containers=dict(web=dict(failed=False, generation_after=2), new=dict(failed=False),
                                  api=dict(failed=False, container=dict(generation=4)),
                                  db=dict(failed=True, msg='stop failed')))
    after = fleet_rolled_back(outcomes, items, result, 'rolled back with the rest')
    assert dict((n, (o['outcome'], o['message'])) for n, o in after.items()) == dict(
        web=('rolled_back', 'health check failed: x; rolled back to generation 2'),
        new=('failed', 'the apply failed: y; removed again (it was created in this run)'),
        api=('rolled_back', 'rolled back with the rest; its previous settings are back (generation 4)'),
        db=('failed', 'rolled back with the rest; the rollback failed: stop failed'))
    assert not any(o['rollback'] or o['undo'] for o in after.values())
    assert fleet_undo(after, True) == []


def test_a_failed_rollback_call_fails_every_item():
    outcomes = dict(web=dict(outcome='unhealthy', message='m', rollback=True, undo=dict(name='web', rollback=True)))
    after = fleet_rolled_back(outcomes, [outcomes['web']['undo']], dict(failed=True, msg='lock'))
    assert after['web']['outcome'] == 'failed' and after['web']['message'] == 'm; the rollback failed: lock'


# progress -----------------------------------------------------------------------------------

def test_progress_stops_on_a_broken_change():
    state = dict(batches=[], stopped=False, stopped_at=None, reason=None, problems={}, max_fail_percentage=0)
    outcomes = dict(host1=dict(web=dict(outcome='unhealthy', batch=2)), host2=dict(web=dict(outcome='failed', batch=2)),
                    host3=dict(web=dict(outcome='unhealthy', batch=1)))
    hostvars = hostvars_for(dict((h, []) for h in HOSTS), {}, outcomes)
    after = fleet_progress(state, hostvars, HOSTS, HOSTS, 2)
    assert after['stopped'] and after['stopped_at'] == 2
    assert after['reason'] == 'batch 2: host1/web failed its health check, host2/web failed to apply'
    assert fleet_progress(after, hostvars, HOSTS, HOSTS, 3) == after
    assert not fleet_progress(state, hostvars, HOSTS, HOSTS, 3)['stopped']


def test_progress_counts_lost_hosts_against_the_threshold():
    state = dict(batches=[], stopped=False, problems={}, max_fail_percentage=34)
    hostvars = hostvars_for(dict((h, []) for h in HOSTS), {})
    assert not fleet_progress(state, hostvars, HOSTS, ['host1', 'host2'], 1)['stopped']
    after = fleet_progress(state, hostvars, HOSTS, ['host1'], 1)
    assert after['stopped'] and after['reason'] == (
        'batch 1: host2 unreachable, host3 unreachable (2 of 3 hosts, 67% > container_fleet_max_fail_percentage 34%)')


# summary ------------------------------------------------------------------------------------

CONTRACT_KEYS = set(['outcome', 'action', 'reasons', 'batch', 'health', 'message'])


def summary_case(check_mode=False, reached=None, outcomes=None, stopped=False, plans=None):
    reached = HOSTS if reached is None else reached
    specs = dict((h, [WEB, CACHE]) for h in HOSTS)
    plans = plans or dict((h, plan_of(web=plan_entry('reload'), cache=plan_entry())) for h in HOSTS)
    hostvars = hostvars_for(specs, plans, outcomes)
    state = fleet_batches(hostvars, HOSTS, reached, [1], 50)
    if stopped:
        state.update(stopped=True, stopped_at=1, reason='batch 1: host1/web failed its health check')
    return fleet_summary(hostvars, HOSTS, reached, state, check_mode)


def test_summary_of_a_successful_rollout():
    outcomes = dict((h, dict(web=dict(outcome='updated', batch=i, health='passed', message=None)))
                    for i, h in enumerate(HOSTS, 1))
    summary = summary_case(outcomes=outcomes)
    assert summary['result'] == 'success' and summary['check_mode'] is False and summary['unreachable'] == []
    assert summary['batches'] == [['host1/web'], ['host2/web'], ['host3/web']]
    assert summary['stopped'] is None
    host = summary['hosts']['host2']
    assert host['status'] == 'updated' and list(host['containers']) == ['web', 'cache']
    assert host['containers']['web'] == dict(outcome='updated', action='reload', reasons=['because'], batch=2,
                                             health='passed', message=None)
    assert host['containers']['cache'] == dict(outcome='unchanged', action='noop', reasons=[], batch=None,
                                               health=None, message=None)
    for entry in summary['hosts'].values():
        assert all(set(c) == CONTRACT_KEYS for c in entry['containers'].values())
    json.dumps(summary)


def test_summary_in_check_mode_is_planned():
    summary = summary_case(check_mode=True)
    assert summary['result'] == 'success' and summary['check_mode'] is True
    assert [summary['hosts'][h]['containers']['web']['outcome'] for h in HOSTS] == ['planned'] * 3
    assert summary['hosts']['host1']['status'] == 'planned'


def test_summary_of_a_rolled_back_rollout_has_pending_containers():
    outcomes = dict(host1=dict(web=dict(outcome='rolled_back', batch=1, health='failed', message='health check failed')))
    summary = summary_case(outcomes=outcomes, stopped=True)
    assert summary['result'] == 'rolled_back'
    assert summary['stopped'] == dict(batch=1, reason='batch 1: host1/web failed its health check')
    assert [summary['hosts'][h]['status'] for h in HOSTS] == ['rolled_back', 'unchanged', 'unchanged']
    pending = summary['hosts']['host3']['containers']['web']
    assert pending['outcome'] == 'pending' and pending['batch'] == 3
    assert pending['message'] == 'not applied: the rollout stopped (batch 1: host1/web failed its health check)'


def test_summary_names_an_unreachable_host_and_fails():
    outcomes = dict(host1=dict(web=dict(outcome='updated', batch=1, health='passed', message=None)),
                    host2=dict(web=dict(outcome='updated', batch=2, health='passed', message=None)))
    summary = summary_case(outcomes=outcomes, reached=['host1', 'host2'])
    assert summary['result'] == 'failed' and summary['unreachable'] == ['host3']
    host3 = summary['hosts']['host3']
    assert host3['status'] == 'unreachable'
    assert host3['containers']['web']['outcome'] == 'pending'
    assert host3['containers']['cache']['outcome'] == 'unchanged'


def test_summary_of_an_unhealthy_container_never_rolled_back_is_failed():
    outcomes = dict(host1=dict(web=dict(outcome='unhealthy', batch=1, health='failed', message='m')))
    summary = summary_case(outcomes=outcomes, reached=['host2', 'host3'], stopped=True)
    web = summary['hosts']['host1']['containers']['web']
    assert (web['outcome'], web['message']) == ('failed', 'm; not rolled back')
    assert summary['result'] == 'failed'


def test_summary_of_a_failed_container_is_failed():
    outcomes = dict(host1=dict(web=dict(outcome='failed', batch=1, health=None, message='the apply failed: x')))
    summary = summary_case(outcomes=outcomes, stopped=True)
    assert summary['result'] == 'failed' and summary['hosts']['host1']['status'] == 'failed'


def test_report_lines():
    outcomes = dict(host1=dict(web=dict(outcome='rolled_back', batch=1, health='failed', message='why')))
    lines = fleet_report(summary_case(outcomes=outcomes, stopped=True))
    assert lines[:3] == ['result: rolled_back', 'stopped: batch 1: host1/web failed its health check',
                         'batches: 1: host1/web | 2: host2/web | 3: host3/web']
    assert 'host1: rolled_back (1 unchanged)' in lines
    assert '  web: rolled_back (action reload, batch 1, health failed) - why' in lines
    assert fleet_report(dict(result='success', check_mode=True, batches=[], hosts={}))[:2] == [
        'result: success (check mode: nothing changed)', 'batches: none (nothing to change)']


class CountingHostvars(dict):
    """hostvars that count how often each host's variables are looked up."""

    def __init__(self, data):
        super(CountingHostvars, self).__init__(data)
        self.lookups = {}

    def __getitem__(self, host):
        self.lookups[host] = self.lookups.get(host, 0) + 1
        return super(CountingHostvars, self).__getitem__(host)


@pytest.mark.parametrize('changes, check_mode, reached', [
    (True, False, HOSTS),               # batches to run: no summary yet
    (False, False, HOSTS),              # a no-op
    (True, True, HOSTS),                # --check
    (True, False, HOSTS[:2]),           # a lost host stops the rollout before any change
])
def test_order_is_batches_and_the_summary_when_no_batch_runs(changes, check_mode, reached):
    specs = dict((h, [WEB, CACHE]) for h in HOSTS)
    plans = dict((h, plan_of(web=plan_entry('reload' if changes else 'noop'), cache=plan_entry())) for h in HOSTS)
    hostvars = CountingHostvars(hostvars_for(specs, plans))
    ordered = fleet_order(hostvars, HOSTS, reached, [1, '25%'], 0, check_mode)
    # one look at each host's variables, for the batches and the summary together
    assert hostvars.lookups == dict((h, 1) for h in HOSTS)
    state = fleet_batches(hostvars, HOSTS, reached, [1, '25%'], 0)
    assert ordered['state'] == state
    if changes and not check_mode and reached == HOSTS:
        assert state['schedule'] and ordered['summary'] is None
    else:
        assert ordered['summary'] == fleet_summary(hostvars, HOSTS, reached, state, check_mode)
        assert ordered['summary']['check_mode'] is check_mode
    json.dumps(ordered)


def test_the_filters_are_exposed():
    assert sorted(FilterModule().filters()) == [
        'fleet_batches', 'fleet_gate', 'fleet_order', 'fleet_outcomes', 'fleet_progress', 'fleet_report',
        'fleet_rolled_back',
        'fleet_summary', 'fleet_undo']
