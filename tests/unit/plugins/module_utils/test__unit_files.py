# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Boot wiring and unit drop-ins: option checks, the drop-in text, the plan, reading them back."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

import pytest

from ansible_collections.nixfleet.containers.plugins.module_utils._plan import plan
from ansible_collections.nixfleet.containers.plugins.module_utils._state import (
    dropin_path,
    parse_dropin,
    render_dropin,
    unit_properties_from_params,
    wants_link_path,
    with_unit_files,
)

CONF = {'PRIVATE_NETWORK': '1', 'HOST_ADDRESS': '10.233.1.1', 'LOCAL_ADDRESS': '10.233.1.2',
        'HOST_BRIDGE': '', 'HOST_PORT': '', 'AUTO_START': '0'}


def params(**more):
    p = dict(cpu_quota=None, memory_max=None, tasks_max=None, unit_properties=None)
    p.update(more)
    return p


def test_no_limit_option_means_unmanaged():
    assert unit_properties_from_params(params()) is None


def test_limits_and_properties_render_in_a_stable_order():
    props = unit_properties_from_params(params(cpu_quota='50%', memory_max='1G', tasks_max=64,
                                               unit_properties=dict(IOWeight=10, CPUWeight=50, Delegate=True)))
    assert render_dropin('web', props) == (
        '# Managed by nixfleet.containers: unit properties of container web.\n[Service]\n'
        'CPUQuota=50%\nMemoryMax=1G\nTasksMax=64\nCPUWeight=50\nDelegate=yes\nIOWeight=10\n')
    assert parse_dropin(render_dropin('web', props)) == props
    assert render_dropin('web', {}) == ''


@pytest.mark.parametrize('bad, option', [
    (dict(cpu_quota='half'), 'cpu_quota'), (dict(cpu_quota='50'), 'cpu_quota'),
    (dict(memory_max='1GB'), 'memory_max'), (dict(tasks_max='-1'), 'tasks_max'),
    (dict(unit_properties={'bad key': 1}), 'unit_properties'),
    (dict(unit_properties={'MemoryHigh': '1G\nExecStart=/bin/sh'}), 'unit_properties'),
    (dict(cpu_quota='10%', unit_properties={'CPUQuota': '20%'}), 'unit_properties'),
])
def test_bad_values_name_the_option(bad, option):
    with pytest.raises(ValueError) as error:
        unit_properties_from_params(params(**bad))
    assert str(error.value).startswith(option + ':')


def existing(running=True, **more):
    c = dict(name='web', kind='imperative', conf=dict(CONF), extra_config='', configuration_nix='...',
             running=running, system_path='/nix/store/a', generation=1, auto_start=False, unit_dropin=None)
    c.update(more)
    return c


def desired(**more):
    d = dict(state='started', conf=dict(CONF), auto_start_link=None, unit_dropin=None)
    d.update(more)
    return d


def test_link_change_needs_no_restart():
    p = plan(existing(), desired(auto_start_link=True))
    assert (p.action, p.names) == ('configure', ['link'])
    assert 'no restart needed' in p.reasons[0]
    assert plan(existing(auto_start=True), desired(auto_start_link=True)).action == 'noop'
    assert plan(existing(auto_start=True), desired()).action == 'noop'


def test_dropin_change_restarts_a_running_container_only():
    p = plan(existing(), desired(unit_dropin='[Service]\nMemoryMax=1G\n', unit_properties={'MemoryMax': '1G'}))
    assert (p.action, p.names) == ('restart', ['stop', 'write_dropin', 'start'])
    p = plan(existing(running=False), desired(state='present', unit_dropin='x'))
    assert (p.action, p.names) == ('configure', ['write_dropin'])
    assert plan(existing(unit_dropin='x'), desired(unit_dropin='x')).action == 'noop'


def test_create_and_destroy_carry_the_unit_files():
    p = plan(None, desired(auto_start_link=True, unit_dropin='x'))
    assert p.names == ['create', 'link', 'write_dropin', 'start']
    p = plan(existing(auto_start=True, unit_dropin='x'), desired(state='absent', auto_start_link=False, unit_dropin=''))
    assert p.names == ['destroy', 'link', 'write_dropin']


def test_reading_the_link_and_dropin_back(tmp_path):
    unit_dir = str(tmp_path)
    container = dict(name='web')
    assert with_unit_files(container, unit_dir)['auto_start'] is False
    os.makedirs(os.path.dirname(wants_link_path(unit_dir, 'web')))
    os.symlink('/etc/systemd/system/container@.service', wants_link_path(unit_dir, 'web'))
    os.makedirs(os.path.dirname(dropin_path(unit_dir, 'web')))
    with open(dropin_path(unit_dir, 'web'), 'w') as f:
        f.write('[Service]\nTasksMax=5\n')
    found = with_unit_files(container, unit_dir)
    assert found['auto_start'] is True and found['auto_start_link'] == wants_link_path(unit_dir, 'web')
    assert found['unit_properties'] == {'TasksMax': '5'}
