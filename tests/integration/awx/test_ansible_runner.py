"""The rollout through `ansible-runner run`, the way AWX runs a job: a private data directory
(project, inventory, env/extravars, env/envvars), the collection's playbook
nixfleet.containers.rollout, and what lands in the runner's artifacts.

AWX shows a job from the runner's job events and stdout: the rollout's summary must be there
(the `Show the rollout's summary` event carries the fleet_report lines), and agree with the
summary the role wrote as JSON and with the hosts.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[3]
SUMMARY_TASK = "Show the rollout's summary"
HOSTS = ('host1', 'host2')
WEB = {'name': 'rweb', 'settings': {'services': {'nginx': {'enable': True}}},
       'health_check': {'http': {'port': 80, 'path': '/', 'from': 'host'}, 'retries': 3, 'delay': 0.5,
                        'timeout': 2}}


def private_data_dir(lab, root):
    """What AWX hands ansible-runner: inventory, extra vars, environment (project: the playbook
    comes from the collection, by its name)."""
    (root / 'project').mkdir(parents=True)
    (root / 'inventory').mkdir()
    (root / 'env').mkdir()
    (root / 'inventory' / 'hosts.yml').write_text(Path(lab.inventory).read_text())
    (root / 'env' / 'extravars').write_text(yaml.safe_dump({
        'containers': [WEB], 'container_fleet_summary_path': str(root / 'summary.json')}))
    (root / 'env' / 'envvars').write_text(yaml.safe_dump({
        'ANSIBLE_CONFIG': lab.ansible_cfg, 'ANSIBLE_COLLECTIONS_PATH': str(REPO / '.build'),
        'ANSIBLE_NOCOLOR': '1'}))
    return root


def job_events(artifacts):
    events = [json.loads(path.read_text()) for path in (artifacts / 'job_events').glob('*.json')]
    return sorted(events, key=lambda event: event['counter'])


def test_the_rollout_run_by_ansible_runner_leaves_its_summary_in_the_artifacts(clean_hosts, tmp_path):
    lab = clean_hosts
    data = private_data_dir(lab, tmp_path / 'job')
    result = subprocess.run(
        [str(Path(sys.executable).parent / 'ansible-runner'), 'run', str(data), '--ident', 'rollout',
         '--playbook', 'nixfleet.containers.rollout', '--limit', ','.join(HOSTS)],
        capture_output=True, text=True, timeout=900, check=False,
        env=dict(os.environ, PATH='%s:%s' % (Path(sys.executable).parent, os.environ.get('PATH', ''))))
    artifacts = data / 'artifacts' / 'rollout'
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-3000:]
    assert (artifacts / 'status').read_text().strip() == 'successful'
    assert (artifacts / 'rc').read_text().strip() == '0'

    # The summary the role wrote, and the hosts, say the rollout happened.
    summary = json.loads((data / 'summary.json').read_text())
    assert summary['result'] == 'success', summary
    for host in HOSTS:
        assert summary['hosts'][host]['containers']['rweb']['outcome'] == 'created', summary
        assert lab.exec(host, 'nixos-container', 'status', 'rweb', check=True).stdout.strip() == 'up'

    # The job events: the summary task's event carries the report lines, once (run_once).
    events = job_events(artifacts)
    assert events and events[-1]['event'] == 'playbook_on_stats'
    shown = [event for event in events if event['event'] == 'runner_on_ok'
             and event['event_data'].get('task') == SUMMARY_TASK]
    assert len(shown) == 1, [event['event_data'].get('task') for event in events]
    lines = shown[0]['event_data']['res']['msg']
    assert lines[0] == 'result: success', lines
    assert any(line.strip().startswith('rweb: created') for line in lines), lines
    # ... and the job's stdout (what AWX's job output shows) has them too.
    stdout = (artifacts / 'stdout').read_text()
    assert SUMMARY_TASK in stdout and 'result: success' in stdout
    # The job's recap: every host ok, none failed or unreachable.
    recap = events[-1]['event_data']
    assert set(recap['ok']) == set(HOSTS) and not recap['failures'] and not recap['dark']
