"""meta/runtime.yml action groups: a default set once through `group/nixfleet.containers.nixos`
(or a narrower group) reaches every module of the group, on the lab's host1.

Each module gets, through the group, an option it has, and the option's effect is checked on
the host: nixos_container_bin points at a wrapper that logs its calls; netns points at a network
namespace the test made (the NAT table and the interface's address land there, not in the
host's own namespace); nixos_container_info (which does not run the command), nixos_container's
systemd_unit_dir and the declarative module's directory are checked in the module's
parameters (its `invocation`); fleet_validate's variable
makes it check another variable, whose bad spec it reports.
"""

import json
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[3]
HOST = 'host1'
PROBE = '/tmp/nixfleet-defaults-probe'
WRAPPER = PROBE + '/bin/nixos-container'
CALLS = PROBE + '/calls'
NETNS = 'nixfleet-defaults'
DUMMY = 'nfdef0'  # a veth pair's end (no dummy interfaces in the lab)
ADDRESS = '10.254.77.1/24'
TABLE = 'nixfleet_defaults_probe'  # not the default table: other tests leave theirs on the host
UNIT_DIR = PROBE + '/units'
DECL_DIR = PROBE + '/declarative'

SETUP = f'''
set -e
mkdir -p {PROBE}/bin {UNIT_DIR} {DECL_DIR}
real=$(command -v nixos-container)
printf '#!/bin/sh\\necho "$*" >> {CALLS}\\nexec %s "$@"\\n' "$real" > {WRAPPER}
chmod +x {WRAPPER}
ip netns add {NETNS}
ip -n {NETNS} link add {DUMMY} type veth peer name {DUMMY}p
ip -n {NETNS} link set {DUMMY}p up
ip -n {NETNS} link set {DUMMY} up
'''
CLEANUP = f'ip netns del {NETNS} 2>/dev/null; rm -rf {PROBE}; true'


def task(name, module, args, defaults, group='nixos', **extra):
    entry = {'name': name, 'nixfleet.containers.%s' % module: args, 'register': 'out',
             'module_defaults': {'group/nixfleet.containers.%s' % group: defaults}}
    entry.update(extra)
    return entry


# One task per module, each with the group default of one of its options and without that
# option in its arguments.
THROUGH_NIXOS_GROUP = [
    task('containers', 'nixos_containers', {'containers': [{'name': 'dfprobe', 'state': 'stopped'}]},
         {'nixos_container_bin': WRAPPER}),
    task('info', 'nixos_container_info', {'name': 'dfprobe'}, {'nixos_container_bin': WRAPPER}),
    task('container', 'nixos_container', {'name': 'dfprobe', 'state': 'absent'},
         {'nixos_container_bin': WRAPPER, 'systemd_unit_dir': UNIT_DIR}),
    task('declarative', 'nixos_container_declarative', {'name': 'probe', 'state': 'absent'},
         {'directory': DECL_DIR}, check_mode=True),
    task('nat', 'nixos_container_nat', {'ip_forward': False, 'internal_ips': ['10.254.77.0/24'],
                                        'external_interface': DUMMY, 'table': TABLE}, {'netns': NETNS}),
    task('network', 'nixos_container_network', {'interface': DUMMY, 'host_addresses': [ADDRESS]},
         {'netns': NETNS}),
    task('validate', 'fleet_validate', {}, {'variable': 'probe_spec'}, ignore_errors=True),
]


def play(tasks, **extra):
    entry = {'hosts': HOST, 'gather_facts': False, 'tasks': tasks,
             'vars': {'containers': [], 'probe_spec': [{'name': 'Not A Valid Name'}]}}
    entry.update(extra)
    return json.dumps([entry], indent=2)


@pytest.fixture
def probe_host(clean_hosts):
    lab = clean_hosts
    lab.exec(HOST, 'sh', '-c', CLEANUP)
    lab.exec(HOST, 'sh', '-c', SETUP, check=True)
    yield lab
    lab.exec(HOST, 'sh', '-c', CLEANUP, check=True)


def host_sh(lab, script):
    return lab.exec(HOST, 'sh', '-c', script, check=True).stdout


def test_the_nixos_group_holds_every_module():
    runtime = yaml.safe_load((REPO / 'meta' / 'runtime.yml').read_text())
    modules = sorted(path.stem for path in (REPO / 'plugins' / 'modules').glob('*.py')
                     if not path.stem.startswith('_'))
    assert sorted(runtime['action_groups']['nixos']) == modules
    assert {task_['name'] for task_ in THROUGH_NIXOS_GROUP} and len(THROUGH_NIXOS_GROUP) == len(modules)
    # Every narrower group is a part of nixos.
    for name, members in runtime['action_groups'].items():
        assert set(members) <= set(modules), name


def test_a_default_set_through_the_nixos_group_reaches_each_module(probe_host):
    lab = probe_host
    run = lab.playbook(play(THROUGH_NIXOS_GROUP))
    for entry in THROUGH_NIXOS_GROUP:
        result = run.result(HOST, entry['name'])
        assert entry['name'] == 'validate' or not result['failed'], result

    # nixos_container_bin: nixos_containers created dfprobe and nixos_container destroyed it
    # with the wrapper (nixos_container_info only reads the host's directories and machinectl).
    calls = host_sh(lab, f'cat {CALLS}').splitlines()
    assert any(call.startswith('create dfprobe') for call in calls), calls
    assert any(call.startswith('destroy dfprobe') for call in calls), calls
    assert 'dfprobe' not in host_sh(lab, 'nixos-container list')
    for name in ('containers', 'info', 'container'):
        assert run.result(HOST, name)['result']['invocation']['module_args']['nixos_container_bin'] == WRAPPER
    # systemd_unit_dir, directory: in the modules' parameters.
    assert run.result(HOST, 'container')['result']['invocation']['module_args']['systemd_unit_dir'] == UNIT_DIR
    assert run.result(HOST, 'declarative')['result']['invocation']['module_args']['directory'] == DECL_DIR
    # netns: the NAT table and the address are in the test's namespace, not in the host's own.
    for name in ('nat', 'network'):
        result = run.result(HOST, name)
        assert not result['failed'] and result['changed'], result
    assert TABLE in host_sh(lab, f'ip netns exec {NETNS} nft list tables')
    assert TABLE not in host_sh(lab, 'nft list tables')
    assert ADDRESS in host_sh(lab, f'ip -n {NETNS} -o addr show dev {DUMMY}')
    # variable: fleet_validate checked probe_spec (invalid) instead of containers (valid).
    validate = run.result(HOST, 'validate')
    assert validate['failed'] and 'Not A Valid Name' in json.dumps(validate['result']), validate


def test_without_the_group_default_the_modules_use_their_own(probe_host):
    """The control: the same tasks with an empty group default behave differently."""
    lab = probe_host
    tasks = [dict(entry, module_defaults={'group/nixfleet.containers.nixos': {}}) for entry in THROUGH_NIXOS_GROUP
             if entry['name'] in ('containers', 'info', 'validate')]
    run = lab.playbook(play(tasks))
    assert run.rc == 0, run
    assert 'dfprobe' in host_sh(lab, 'nixos-container list')
    assert host_sh(lab, f'cat {CALLS} 2>/dev/null || true') == ''
    assert run.result(HOST, 'info')['result']['invocation']['module_args']['nixos_container_bin'] is None
    assert not run.result(HOST, 'validate')['failed']


def test_narrower_groups_set_shared_options_once_for_a_whole_play(probe_host):
    """What docs/module-defaults.md recommends: nixos_container_bin for the nixos_container
    group, netns for the nixos_network group, at play level, with every module in the play."""
    lab = probe_host
    tasks = [{key: value for key, value in entry.items() if key != 'module_defaults'}
             for entry in THROUGH_NIXOS_GROUP if entry['name'] not in ('validate',)]
    run = lab.playbook(play(tasks, module_defaults={
        'group/nixfleet.containers.nixos_container': {'nixos_container_bin': WRAPPER},
        'group/nixfleet.containers.nixos_network': {'netns': NETNS}}))
    assert run.rc == 0, run
    calls = host_sh(lab, f'cat {CALLS}').splitlines()
    assert any(call.startswith('create dfprobe') for call in calls), calls
    assert run.result(HOST, 'container')['result']['invocation']['module_args']['nixos_container_bin'] == WRAPPER
    assert TABLE in host_sh(lab, f'ip netns exec {NETNS} nft list tables')
    assert ADDRESS in host_sh(lab, f'ip -n {NETNS} -o addr show dev {DUMMY}')
