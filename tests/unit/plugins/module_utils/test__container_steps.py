# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A container plan's steps carry their arguments; one executor runs them (and the restore)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

import pytest

from ansible_collections.nixfleet.containers.plugins.module_utils._conf import render_conf
from ansible_collections.nixfleet.containers.plugins.module_utils._container_steps import (
    bind,
    ContainerOperations,
    restore_steps,
    TEMPLATE_UNIT,
)
from ansible_collections.nixfleet.containers.plugins.module_utils._envfile import parse_conf
from ansible_collections.nixfleet.containers.plugins.module_utils._nix import render_configuration_nix
from ansible_collections.nixfleet.containers.plugins.module_utils._paths import Layout
from ansible_collections.nixfleet.containers.plugins.module_utils._plan import plan
from ansible_collections.nixfleet.containers.plugins.module_utils._state import dropin_path, wants_link_path
from ansible_collections.nixfleet.containers.plugins.module_utils._steps import execute, Plan, Step

CONF = {'PRIVATE_NETWORK': '1', 'HOST_ADDRESS': '10.233.1.1', 'LOCAL_ADDRESS': '10.233.1.2',
        'HOST_BRIDGE': '', 'HOST_PORT': 'tcp:8080:80', 'AUTO_START': '0'}
OPTIONS = dict(private_network=True, host_address='10.233.1.1', local_address='10.233.1.2', host_bridge=None,
               auto_start=False, flake=None, flake_attr=None)


def params(tmp_path, **more):
    p = dict(systemd_unit_dir=str(tmp_path / 'units'), config_file=None, config='x = 1;', settings=None,
             nixos_path=None, start_timeout=90)
    p.update(more)
    return p


def desired(**more):
    d = dict(state='started', conf=dict(CONF), options=dict(OPTIONS), extra='x = 1;', restart=False,
             recreate=False, rollback=False, rebuild=False, auto_start_link=True, unit_dropin='[Service]\nTasksMax=5\n')
    d.update(more)
    return d


def test_a_create_plan_carries_every_argument(tmp_path):
    layout = Layout(str(tmp_path / 'etc'), str(tmp_path / 'var'))
    want = desired()
    bound = bind(plan(None, want), 'web', layout, params(tmp_path), None, want)
    assert bound.names == ['create', 'link', 'write_dropin', 'start']
    create, link, dropin, start = bound.steps
    record = dict(conf_path=layout.conf_path('web'), conf=CONF, profile=layout.system_profile('web'),
                  config_digest=None)
    assert create == Step('create', name='web', host_address='10.233.1.1', local_address='10.233.1.2', bridge=None,
                          port='tcp:8080:80', auto_start=False, config='x = 1;', config_file=None, flake=None,
                          flake_attr=None, system_path=None, nixos_path=None, record=record)
    assert link == Step('link', path=wants_link_path(str(tmp_path / 'units'), 'web'), wanted=True)
    assert dropin == Step('write_dropin', path=dropin_path(str(tmp_path / 'units'), 'web'), text=want['unit_dropin'])
    assert start == Step('start', name='web', timeout=90, reset_failed=False)


def test_host_network_passes_no_addresses_and_a_conf_change_carries_the_text(tmp_path):
    layout = Layout(str(tmp_path / 'etc'), str(tmp_path / 'var'))
    want = desired(options=dict(OPTIONS, private_network=False), auto_start_link=None, unit_dropin=None)
    create = bind(plan(None, want), 'web', layout, params(tmp_path), None, want).steps[0]
    assert (create.args['host_address'], create.args['local_address'], create.args['port']) == (None, None, None)
    current = dict(name='web', kind='imperative', conf=dict(CONF, HOST_PORT=''), extra_config='x = 1;',
                   configuration_nix='...', running=True, active_state='failed', system_path='/nix/store/a',
                   generation=1)
    bound = bind(plan(current, want), 'web', layout, params(tmp_path), current, want)
    assert bound.names == ['stop', 'write_conf', 'start']
    assert bound.steps[1] == Step('write_conf', path=layout.conf_path('web'), text=render_conf(CONF))
    assert bound.steps[2].args['reset_failed'] is True


class Runner(object):
    """What the operations ask of nixos-container, systemctl and nix-env, recorded."""
    nix_env, systemctl = '/nix-env', '/systemctl'

    def __init__(self, fail=None):
        self.calls = []
        self.fail = fail

    def __getattr__(self, method):
        def record(*args, **kwargs):
            self.calls.append((method,) + args + tuple(sorted(kwargs.items())))
            if method == self.fail:
                raise RuntimeError('%s failed' % method)
        return record


def test_the_operations_do_what_the_steps_say(tmp_path):
    conf_path = str(tmp_path / 'web.conf')
    profile = tmp_path / 'profile' / 'system'
    profile.parent.mkdir()
    system = tmp_path / 'store-system'
    system.mkdir()
    profile.symlink_to(system)
    link = str(tmp_path / 'units' / 'machines.target.wants' / 'container@web.service')
    dropin = str(tmp_path / 'units' / 'container@web.service.d' / '50-nixfleet.conf')
    record = dict(conf_path=conf_path, conf=CONF, profile=str(profile), config_digest='ab')
    runner = Runner()
    seen = []
    execute([Step('create', name='web', record=record, config='x = 1;'),
             Step('link', path=link, wanted=True),
             Step('write_dropin', path=dropin, text='[Service]\nTasksMax=5\n'),
             Step('start', name='web', timeout=90, reset_failed=True)],
            ContainerOperations(runner), before=lambda step: seen.append(step.op))
    assert seen == ['create', 'link', 'write_dropin', 'start']
    assert runner.calls == [
        ('create', 'web', ('config', 'x = 1;')),
        ('call', ['/systemctl', 'daemon-reload'], 'systemctl daemon-reload'),
        ('reset_failed', 'web'),
        ('start', 'web', ('timeout', 90)),
    ]
    # The conf records the system the profile points to now, and the config_file digest.
    assert parse_conf(open(conf_path).read()) == dict(CONF, NIXFLEET_SYSTEM=str(system), NIXFLEET_CONFIG_SHA256='ab')
    assert os.readlink(link) == TEMPLATE_UNIT
    assert open(dropin).read() == '[Service]\nTasksMax=5\n'
    execute([Step('link', path=link, wanted=False), Step('write_dropin', path=dropin, text='')], ContainerOperations(runner))
    assert not os.path.lexists(link) and not os.path.exists(os.path.dirname(dropin))


def test_a_failing_step_stops_the_plan(tmp_path):
    runner = Runner(fail='stop')
    with pytest.raises(RuntimeError, match='stop failed'):
        execute([Step('stop', name='web'), Step('start', name='web', timeout=None)], ContainerOperations(runner))
    assert runner.calls == [('stop', 'web')]


def test_the_restore_is_a_plan_of_steps_too(tmp_path):
    layout = Layout(str(tmp_path / 'etc'), str(tmp_path / 'var'))
    unit_dir = str(tmp_path / 'units')
    os.makedirs(os.path.dirname(layout.configuration_nix('web')))
    with open(layout.configuration_nix('web'), 'w') as f:
        f.write('changed')
    saved = dict(conf_text='A=1\n', configuration_nix=render_configuration_nix('web', 'x = 1;'), generation=None,
                 system_path=None, unit_dropin=None, auto_start=False, running=True)
    steps = restore_steps('web', layout, unit_dir, saved, dict(active_state='failed'), 90)
    assert steps == [
        Step('stop', name='web'),
        Step('write_conf', path=layout.conf_path('web'), text='A=1\n'),
        Step('write_configuration', path=layout.configuration_nix('web'), text=saved['configuration_nix']),
        Step('start', name='web', timeout=90, reset_failed=True),
    ]
    # A stopped container whose start failed: stopped again and its failure cleared (not left failed).
    assert restore_steps('web', layout, unit_dir, dict(saved, configuration_nix=None, running=False),
                         dict(active_state='failed'), 90) == [
        Step('stop', name='web'), Step('write_conf', path=layout.conf_path('web'), text='A=1\n'),
        Step('reset_failed', name='web')]
    # Nothing running and the files as saved: only the conf write, which compares before it writes.
    assert restore_steps('web', layout, unit_dir, dict(saved, configuration_nix=None, running=False), {}, 90) == [
        Step('write_conf', path=layout.conf_path('web'), text='A=1\n')]


def test_plans_show_their_steps_by_label():
    p = Plan('configure', [Step('add_address', label='add 10.0.0.1/24 to br0', name='br0', address='10.0.0.1/24')])
    assert p.changes and p.names == ['add 10.0.0.1/24 to br0'] and p.has('add_address') and not p.has('stop')
    assert p.as_dict() == dict(action='configure', steps=['add 10.0.0.1/24 to br0'], reasons=[])
    assert not Plan('noop', []).changes
