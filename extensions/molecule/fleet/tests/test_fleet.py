"""fleet: the batches of a three-host rollout (summary JSON on the controller) and the result."""

import math
from pathlib import Path

import yaml

HOSTS = ('host1', 'host2', 'host3')


def spec():
    """converge.yml's play: its containers and batch sizes are what the rollout was given."""
    with open(Path(__file__).resolve().parents[1] / 'converge.yml', encoding='utf-8') as stream:
        return yaml.safe_load(stream)[0]['vars']


def test_every_host_runs_web(host, conf, http_get):
    assert host.check_output('nixos-container status web') == 'up'
    assert http_get(host, conf(host, 'web')['LOCAL_ADDRESS']) == 'web generation 1'
    assert host.check_output('nixos-container status worker') == 'up'


def test_rollout_batches(summary):
    rollout = summary('rollout-summary.json')
    assert rollout['result'] == 'success', rollout
    batches = rollout['batches']
    members = [member for batch in batches for member in batch]
    # Every container of every host moved exactly once.
    names = [container['name'] for container in spec()['containers']]
    assert sorted(members) == sorted('%s/%s' % (h, n) for h in HOSTS for n in names)
    # A canary of one, then batches no larger than their size (the last size repeats).
    sizes = spec()['container_fleet_batches']
    assert len(batches[0]) == 1
    for index, batch in enumerate(batches):
        size = sizes[min(index, len(sizes) - 1)]
        limit = math.ceil(len(members) * int(size[:-1]) / 100) if isinstance(size, str) else size
        assert 1 <= len(batch) <= limit, (index, batch)


def test_no_batch_restarts_two_members_of_a_service_group(summary):
    groups = {c['name']: c.get('service_group') for c in spec()['containers']}
    for batch in summary('rollout-summary.json')['batches']:
        in_groups = [groups[member.split('/', 1)[1]] for member in batch]
        in_groups = [group for group in in_groups if group]
        assert len(in_groups) == len(set(in_groups)), batch


def test_summary_per_container(summary):
    rollout = summary('rollout-summary.json')
    for index, batch in enumerate(rollout['batches'], start=1):
        for member in batch:
            host_name, name = member.split('/', 1)
            record = rollout['hosts'][host_name]['containers'][name]
            assert record['outcome'] == 'created' and record['batch'] == index, (member, record)
            # web has a health check that gated the next batch; worker has none.
            assert record['health'] == ('passed' if name == 'web' else None), (member, record)
    assert rollout['unreachable'] == []
    assert {h: rollout['hosts'][h]['status'] for h in HOSTS} == dict.fromkeys(HOSTS, 'updated')


def test_second_run_moved_nothing(summary):
    again = summary()
    assert again['result'] == 'success' and again['batches'] == []
    for host_name in HOSTS:
        assert again['hosts'][host_name]['status'] == 'unchanged'
        assert {c['outcome'] for c in again['hosts'][host_name]['containers'].values()} == {'unchanged'}
