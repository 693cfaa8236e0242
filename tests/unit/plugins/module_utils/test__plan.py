# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The planner: which action, which steps, which reasons, for each kind of difference."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.nixfleet.containers.plugins.module_utils._plan import PlanError, plan

BASE_CONF = {'PRIVATE_NETWORK': '1', 'HOST_ADDRESS': '10.233.1.1', 'LOCAL_ADDRESS': '10.233.1.2',
             'HOST_BRIDGE': '', 'HOST_PORT': '', 'AUTO_START': '0'}


def current(running=True, kind='imperative', conf=None, extra='services.nginx.enable = true;', **more):
    c = dict(name='web', kind=kind, conf=dict(conf or BASE_CONF), extra_config=extra,
             configuration_nix='...', running=running, system_path='/nix/store/a-system', generation=1)
    c.update(more)
    return c


def desired(state='started', conf=None, extra='services.nginx.enable = true;', **more):
    d = dict(state=state, conf=dict(conf or BASE_CONF), extra=extra, restart=False, recreate=False,
             rollback=False, rebuild=False)
    d.update(more)
    return d


def test_noop_when_everything_matches():
    p = plan(current(), desired())
    assert (p.action, p.names, p.reasons) == ('noop', [], [])
    assert not p.changes


def test_missing_container_is_created_and_started():
    assert plan(None, desired()).names == ['create', 'start']
    assert plan(None, desired(state='present')).names == ['create']
    assert plan(None, desired(state='stopped')).names == ['create']
    assert plan(None, desired(state='absent')).action == 'noop'


def test_guest_change_reloads_without_stopping():
    p = plan(current(), desired(extra='services.nginx.enable = false;'))
    assert (p.action, p.names) == ('reload', ['update'])
    assert p.reasons == ['the guest configuration changed']


def test_conf_change_restarts_a_running_container():
    conf = dict(BASE_CONF, HOST_PORT='tcp:8080:80')
    p = plan(current(), desired(conf=conf))
    assert (p.action, p.names) == ('restart', ['stop', 'write_conf', 'start'])
    assert p.reasons == ["HOST_PORT changes from '' to 'tcp:8080:80'"]


def test_conf_and_guest_change_restart_once_with_update_while_stopped():
    conf = dict(BASE_CONF, HOST_PORT='tcp:8080:80')
    p = plan(current(), desired(conf=conf, extra='x = 1;'))
    # update runs while the container is stopped, so it does not reload a container about to restart.
    assert p.names == ['stop', 'write_conf', 'update', 'start']
    assert p.action == 'restart'


def test_conf_change_of_a_stopped_container_only_writes():
    conf = dict(BASE_CONF, HOST_PORT='tcp:8080:80')
    p = plan(current(running=False), desired(state='stopped', conf=conf))
    assert (p.action, p.names) == ('configure', ['write_conf'])


def test_auto_start_and_bookkeeping_never_restart():
    p = plan(current(), desired(conf=dict(BASE_CONF, AUTO_START='1')))
    assert p.names == ['write_conf']
    assert p.reasons == ['the conf file changes (no restart needed)']
    p = plan(current(conf=dict(BASE_CONF, NIXFLEET_SYSTEM='/nix/store/a-system')), desired())
    assert p.action == 'noop'


def test_state_transitions():
    assert plan(current(running=False), desired()).names == ['start']
    assert plan(current(running=True), desired(state='stopped')).names == ['stop']
    assert plan(current(running=True), desired(state='present')).action == 'noop'
    assert plan(current(running=False), desired(state='present')).action == 'noop'
    assert plan(current(), desired(state='absent')).names == ['destroy']


def test_restart_and_recreate_flags():
    assert plan(current(), desired(restart=True)).names == ['stop', 'start']
    assert plan(current(running=False), desired(state='stopped', restart=True)).action == 'noop'
    assert plan(current(), desired(recreate=True)).names == ['destroy', 'create', 'start']
    assert plan(current(running=False), desired(state='stopped', recreate=True)).names == ['destroy', 'create']


def test_rollback_reloads_or_restarts():
    two = dict(generation=2, generations=[dict(number=1, path='/nix/store/a'), dict(number=2, path='/nix/store/b')])
    assert plan(current(**two), desired(rollback=True, extra=None)).names == ['rollback', 'reload']
    conf = dict(BASE_CONF, HOST_PORT='tcp:1:1')
    assert plan(current(**two), desired(rollback=True, extra=None, conf=conf)).names == \
        ['rollback', 'stop', 'write_conf', 'start']
    assert plan(current(running=False, **two), desired(state='stopped', rollback=True, extra=None)).names == ['rollback']
    # With the configuration of that generation: configuration.nix goes back too (no build).
    assert plan(current(**two), desired(rollback=True, extra='x = 1;')).names == ['rollback', 'write_configuration', 'reload']


def test_rollback_at_the_oldest_generation_is_refused():
    with pytest.raises(PlanError, match='no generation before 1'):
        plan(current(generations=[dict(number=1, path='/nix/store/a')]), desired(rollback=True, extra=None))


def test_rolled_back_profile_is_drift():
    conf = dict(BASE_CONF, NIXFLEET_SYSTEM='/nix/store/b-system')
    p = plan(current(conf=conf), desired(conf=conf))
    assert p.action == 'reload'
    assert 'rolled back or changed by hand' in p.reasons[0]


def test_hand_edited_configuration_is_a_change():
    p = plan(current(extra=None), desired())
    assert p.reasons == ['configuration.nix does not follow the nixos-container template (edited by hand?)']


def test_flake_change_and_config_file_digest():
    conf = dict(BASE_CONF, FLAKE='/srv/f', NIXFLEET_FLAKE_ATTR='web')
    p = plan(current(conf=conf), desired(conf=dict(conf, NIXFLEET_FLAKE_ATTR='api'), extra=None))
    assert (p.action, p.names) == ('reload', ['write_conf', 'update'])
    conf = dict(BASE_CONF, NIXFLEET_CONFIG_SHA256='aa')
    p = plan(current(conf=conf), desired(conf=conf, config_digest='bb'))
    assert p.reasons == ['the content of config_file changed']


def test_system_path_is_set_and_reloaded():
    p = plan(current(), desired(extra=None, system_path='/nix/store/c-system'))
    assert p.names == ['set_system', 'reload']


def test_system_path_with_the_configuration_it_was_built_from_writes_it():
    p = plan(current(), desired(extra='services.nginx.enable = false;', system_path='/nix/store/c-system'))
    assert p.names == ['set_system', 'write_configuration', 'reload']
    # the same text: nothing to write; a new container gets it after the create
    p = plan(current(), desired(system_path='/nix/store/c-system'))
    assert p.names == ['set_system', 'reload']
    assert plan(None, desired(system_path='/nix/store/c-system')).names == ['create', 'write_configuration', 'start']


def test_rebuild_forces_update_only():
    p = plan(current(), desired(rebuild=True))
    assert (p.names, p.reasons) == (['update'], ['rebuild requested'])


def test_declarative_containers_start_and_stop_but_never_change():
    assert plan(current(kind='declarative', running=False), desired(extra=None)).names == ['start']
    with pytest.raises(PlanError, match='declarative'):
        plan(current(kind='declarative'), desired(state='absent'))
    with pytest.raises(PlanError, match='declarative'):
        plan(current(kind='declarative'), desired(conf=dict(BASE_CONF, HOST_PORT='tcp:1:1'), extra=None))
    with pytest.raises(PlanError, match='declarative'):
        plan(current(kind='declarative'), desired(recreate=True))
