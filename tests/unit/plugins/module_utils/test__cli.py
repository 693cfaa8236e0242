# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The command runner: argv lists, error texts mapped, systemctl show parsed."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.nixfleet.containers.plugins.module_utils._cli import (
    CliError,
    Runner,
    explain,
    parse_systemctl_show,
)


class FakeHost(object):
    """Answers commands from a table; records what ran."""

    def __init__(self, answers=None):
        self.answers = answers or {}
        self.calls = []

    def __call__(self, argv, data=None, cwd=None):
        self.calls.append((list(argv), data, cwd))
        return self.answers.get(tuple(argv[:3]), (0, '', ''))


def test_create_passes_every_option_as_its_own_argument():
    host = FakeHost()
    runner = Runner(host, nixos_container='/bin/nc')
    runner.create('web', host_address='10.233.1.1', local_address='10.233.1.2', bridge='br0',
                  port='tcp:80:8080', auto_start=True, config='x = "$(reboot)";', nixos_path='/np')
    assert host.calls[0][0] == ['/bin/nc', 'create', 'web', '--host-address', '10.233.1.1',
                                '--local-address', '10.233.1.2', '--bridge', 'br0', '--port', 'tcp:80:8080',
                                '--auto-start', '--config', 'x = "$(reboot)";', '--nixos-path', '/np']
    assert runner.actions == [host.calls[0][0]]


def test_flake_keeps_its_attribute_and_runs_in_the_scratch_dir():
    host = FakeHost()
    runner = Runner(host, nixos_container='nc', scratch_dir='/tmp/s')
    runner.update('web', flake='/srv/f', flake_attr='api')
    assert host.calls[0][0] == ['nc', 'update', 'web', '--flake', '/srv/f#api']
    assert host.calls[0][2] == '/tmp/s'
    runner.update('web', config='a = 1;')
    assert host.calls[1][2] is None


def test_failure_maps_the_cli_text_and_keeps_the_details():
    stderr = '/run/current-system/sw/bin/nixos-container: container \u2018web\u2019 already exists\n'
    host = FakeHost({('nc', 'create', 'web'): (25, '', stderr)})
    with pytest.raises(CliError) as caught:
        Runner(host, nixos_container='nc').create('web')
    error = caught.value
    assert error.msg == ('nixos-container create web failed: a container of that name already exists '
                         '(its conf file is present)')
    assert (error.rc, error.stderr, error.cmd) == (25, stderr, ['nc', 'create', 'web'])


def test_unknown_failure_reports_the_last_line():
    host = FakeHost({('nc', 'stop', 'web'): (1, '', 'first\nsomething odd\n')})
    with pytest.raises(CliError, match='something odd'):
        Runner(host, nixos_container='nc').stop('web')


def test_start_timeout_wraps_with_timeout_and_says_so():
    host = FakeHost({('timeout', '--kill-after=10', '30'): (124, '', '')})
    with pytest.raises(CliError, match='did not finish within start_timeout=30s'):
        Runner(host, nixos_container='nc').start('web', timeout=30)
    assert host.calls[0][0] == ['timeout', '--kill-after=10', '30', 'nc', 'start', 'web']


@pytest.mark.parametrize('text,meaning', [
    ('nixos-container: out of IP addresses', 'every 10.233.N.1/.2 pair is taken'),
    ('nixos-container: cannot destroy declarative container (remove it from your configuration.nix instead)',
     'the container is declarative'),
    ('Unknown option: use-host-network', 'does not know an option'),
])
def test_explain(text, meaning):
    assert meaning in explain(text)


def test_systemctl_show_blocks_in_one_call():
    text = ('Id=container@a.service\nActiveState=active\nSubState=running\nMainPID=42\n\n'
            'Id=container@b.service\nActiveState=inactive\nSubState=dead\nMainPID=0\n')
    units = parse_systemctl_show(text, ['a', 'b'])
    assert units['a']['ActiveState'] == 'active' and units['a']['MainPID'] == '42'
    assert units['b']['SubState'] == 'dead'
    listed = 'container@a.service loaded active running Container a\ncontainer@b.service loaded inactive dead Container b\n'
    host = FakeHost({('systemctl', 'list-units', '--all'): (0, listed, ''),
                     ('systemctl', 'show', '--property=Id,ActiveState,SubState,Result,MainPID'): (0, text, '')})
    assert Runner(host, systemctl='systemctl').show_units(['a', 'b']) == units
    assert host.calls[0][0][-2:] == ['container@a.service', 'container@b.service']
    assert host.calls[1][0][-2:] == ['container@a.service', 'container@b.service']
    assert Runner(host).actions == []


def test_units_systemd_has_not_loaded_are_not_shown():
    # `systemctl show` would load each of them from disk; a unit not loaded is inactive.
    listed = '\u25cf container@b.service loaded failed failed Container b\n'
    text = 'Id=container@b.service\nActiveState=failed\nSubState=failed\nMainPID=0\n'
    host = FakeHost({('systemctl', 'list-units', '--all'): (0, listed, ''),
                     ('systemctl', 'show', '--property=Id,ActiveState,SubState,Result,MainPID'): (0, text, '')})
    assert Runner(host, systemctl='systemctl').show_units(['a', 'b', 'c'])['b']['ActiveState'] == 'failed'
    assert host.calls[1][0][3:] == ['container@b.service']
    host = FakeHost({('systemctl', 'list-units', '--all'): (0, '', '')})
    assert Runner(host, systemctl='systemctl').show_units(['a', 'c']) == {}
    assert len(host.calls) == 1


def test_reset_failed_of_a_unit_systemd_no_longer_has_loaded_is_nothing_to_do():
    # A stopped unit that was retrying a failed start is unloaded: it has no failure left to reset.
    stderr = ('Failed to reset failed state of unit container@web.service: '
              'Unit container@web.service not loaded.\n')
    host = FakeHost({('systemctl', 'reset-failed', 'container@web.service'): (1, '', stderr)})
    runner = Runner(host)
    runner.reset_failed('web')
    assert runner.actions == [['systemctl', 'reset-failed', 'container@web.service']]
    host = FakeHost({('systemctl', 'reset-failed', 'container@web.service'): (1, '', 'Access denied\n')})
    with pytest.raises(CliError, match='Access denied'):
        Runner(host).reset_failed('web')
