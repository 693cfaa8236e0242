# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""nixos_containers' shared pieces: its argument spec, input checks, one-pass allocation, docs."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

import pytest

from ansible_collections.nixfleet.containers.plugins.module_utils import _host
from ansible_collections.nixfleet.containers.plugins.module_utils._container import ContainerManager, container_argument_spec
from ansible_collections.nixfleet.containers.plugins.module_utils._containers import (
    containers_argument_spec,
    element_argument_spec,
    input_errors,
)
from ansible_collections.nixfleet.containers.plugins.module_utils._paths import Layout


def test_element_spec_is_nixos_containers_spec_without_the_binary():
    single = container_argument_spec()
    del single['nixos_container_bin']
    assert element_argument_spec() == single
    assert containers_argument_spec()['containers']['options'] == single


def test_input_errors():
    assert input_errors([dict(name='a'), dict(name='b')], None) == []
    assert input_errors([dict(name='a'), dict(name='a_b'), dict(name='a')], ['-x']) == [
        'containers[1].name: container name \'a_b\' contains "_": machined and declarative NixOS containers '
        'refuse names with underscores',
        'containers[2].name: a is declared twice (also containers[0])',
        'only: \'-x\': container name \'-x\' must not start with "-" (it would be read as an option)',
    ]


class FakeModule(object):
    check_mode = True
    _diff = False

    def __init__(self):
        self.commands = []

    def get_bin_path(self, name, required=False, opt_dirs=None):
        return {'nixos-container': '/bin/true', 'systemctl': '/bin/true'}.get(name)

    def run_command(self, argv, data=None, cwd=None):
        self.commands.append(argv)
        if 'list-units' in argv:   # every container's unit is loaded
            return 0, ''.join('%s loaded inactive dead x\n' % unit for unit in argv if unit.endswith('.service')), ''
        return 0, '', ''

    def warn(self, text):
        pass


@pytest.fixture
def host(tmp_path, monkeypatch):
    conf_dir = tmp_path / 'etc'
    conf_dir.mkdir()
    monkeypatch.setattr(_host.Layout, 'detect', classmethod(lambda cls: Layout(str(conf_dir), str(tmp_path))))
    return _host.HostState(FakeModule()), conf_dir


def test_one_allocation_pass_avoids_confs_claims_and_earlier_pairs(host):
    state, conf_dir = host
    (conf_dir / 'old.conf').write_text('PRIVATE_NETWORK=1\nHOST_ADDRESS=10.233.1.1/24\nLOCAL_ADDRESS=10.233.1.2/24\n')
    state.claim('10.233.2.1', '10.233.2.2', None)      # an explicit pair of a declared container
    assert state.allocate('new1') == ('10.233.3.1', '10.233.3.2')
    assert state.allocate('new2') == ('10.233.4.1', '10.233.4.2')
    # The conf directory was read once, not once per container.
    os.unlink(str(conf_dir / 'old.conf'))
    assert state.allocate('new3') == ('10.233.5.1', '10.233.5.2')


def test_a_containers_own_conf_does_not_block_its_pair(host):
    state, conf_dir = host
    (conf_dir / 'web.conf').write_text('PRIVATE_NETWORK=1\nHOST_ADDRESS=10.233.1.1\nLOCAL_ADDRESS=10.233.1.2\n')
    assert state.allocate('web') == ('10.233.1.1', '10.233.1.2')


def test_load_reads_every_unit_in_one_systemctl_show(host):
    state, conf_dir = host
    for name in ('a', 'b', 'c'):
        (conf_dir / ('%s.conf' % name)).write_text('PRIVATE_NETWORK=1\n')
    state.load(['a', 'b', 'c', 'missing'])
    show = [argv for argv in state.module.commands if 'show' in argv]
    assert len(show) == 1 and show[0][-3:] == ['container@a.service', 'container@b.service', 'container@c.service']
    assert state.current('missing') is None and state.current('b')['kind'] == 'imperative'
    assert len([argv for argv in state.module.commands if 'show' in argv]) == 1


class UnitStateModule(FakeModule):
    """A host whose container@ units report ACTIVE_STATE, and which records every command."""
    check_mode = False

    def __init__(self, active_state):
        super(UnitStateModule, self).__init__()
        self.active_state = active_state

    def get_bin_path(self, name, required=False, opt_dirs=None):
        return {'nixos-container': '/nc', 'systemctl': '/systemctl'}.get(name)

    def run_command(self, argv, data=None, cwd=None):
        self.commands.append(argv)
        if argv[:2] == ['/systemctl', 'list-units']:
            return 0, ''.join('%s loaded %s x x\n' % (unit, self.active_state) for unit in argv[6:]), ''
        if argv[:2] == ['/systemctl', 'show']:
            return 0, ''.join('Id=%s\nActiveState=%s\nSubState=x\nResult=x\nMainPID=0\n\n' % (unit, self.active_state)
                              for unit in argv[3:]), ''
        return 0, '', ''


@pytest.mark.parametrize('active_state,reset', [('failed', True), ('activating', True), ('inactive', False)])
def test_a_failed_unit_is_reset_before_it_starts_again(tmp_path, monkeypatch, active_state, reset):
    # Restart=on-failure (facts §5.2): after a few failed starts systemd refuses the next start
    # ("Start request repeated too quickly") until reset-failed; `activating` is its auto-restart.
    conf_dir = tmp_path / 'etc'
    conf_dir.mkdir()
    (conf_dir / 'web.conf').write_text('PRIVATE_NETWORK=1\nHOST_ADDRESS=10.233.1.1\nLOCAL_ADDRESS=10.233.1.2\n')
    monkeypatch.setattr(_host.Layout, 'detect', classmethod(lambda cls: Layout(str(conf_dir), str(tmp_path))))
    module = UnitStateModule(active_state)
    params = dict((name, spec.get('default')) for name, spec in container_argument_spec().items())
    params.update(name='web', state='started', systemd_unit_dir=str(tmp_path / 'units'))
    manager = ContainerManager(module, params, host=_host.HostState(module))
    assert manager.prepare().names == ['start']
    manager.apply()
    changes = [argv for argv in module.commands if argv[:2] not in (['/systemctl', 'show'], ['/systemctl', 'list-units'])]
    reset_argv = ['/systemctl', 'reset-failed', 'container@web.service']
    start_argv = ['timeout', '--kill-after=10', str(params['start_timeout']), '/nc', 'start', 'web']
    assert changes == ([reset_argv] if reset else []) + [start_argv]
    assert manager.result['actions'] == changes


def test_apply_runs_the_planned_steps_not_the_parameters_of_now(tmp_path, monkeypatch):
    """The plan carries its arguments: changing the parameters after planning changes nothing."""
    conf_dir = tmp_path / 'etc'
    conf_dir.mkdir()
    (conf_dir / 'web.conf').write_text('PRIVATE_NETWORK=1\nHOST_ADDRESS=10.233.1.1\nLOCAL_ADDRESS=10.233.1.2\n')
    monkeypatch.setattr(_host.Layout, 'detect', classmethod(lambda cls: Layout(str(conf_dir), str(tmp_path))))
    module = UnitStateModule('inactive')
    params = dict((name, spec.get('default')) for name, spec in container_argument_spec().items())
    params.update(name='web', state='started', start_timeout=30, systemd_unit_dir=str(tmp_path / 'units'))
    manager = ContainerManager(module, params, host=_host.HostState(module))
    assert manager.prepare().steps[0].args == dict(name='web', timeout=30, reset_failed=False)
    params.update(start_timeout=5, name='other')
    manager.apply()
    assert manager.result['actions'] == [['timeout', '--kill-after=10', '30', '/nc', 'start', 'web']]
