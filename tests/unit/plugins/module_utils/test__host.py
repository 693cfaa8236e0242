# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host layer: errors become fail_json arguments through run_module(); atomic writes; lookup."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

import pytest

from ansible_collections.nixfleet.containers.plugins.module_utils._addressing import PoolError
from ansible_collections.nixfleet.containers.plugins.module_utils._cli import CliError
from ansible_collections.nixfleet.containers.plugins.module_utils._errors import InputError, NixfleetError
from ansible_collections.nixfleet.containers.plugins.module_utils._host import (
    binary_finder,
    run_module,
    write_file_atomically,
    SEARCH_DIRS,
)
from ansible_collections.nixfleet.containers.plugins.module_utils._netlink import NetlinkError
from ansible_collections.nixfleet.containers.plugins.module_utils._nft import NatSpecError
from ansible_collections.nixfleet.containers.plugins.module_utils._plan import PlanError


class Exit(Exception):
    pass


class FakeModule(object):
    def __init__(self):
        self.outcome = None
        self.lookups = []

    def exit_json(self, **kwargs):
        self.outcome = ('exit', kwargs)
        raise Exit()

    def fail_json(self, **kwargs):
        self.outcome = ('fail', kwargs)
        raise Exit()

    def get_bin_path(self, name, required=False, opt_dirs=None):
        self.lookups.append((name, tuple(opt_dirs)))
        return '/bin/%s' % name if name == 'nft' else None


def outcome(work, partial=None):
    module = FakeModule()
    with pytest.raises(Exit):
        run_module(module, work, partial)
    return module.outcome


def raising(error):
    def work():
        raise error
    return work


def test_a_result_is_reported_with_exit_json():
    assert outcome(lambda: dict(changed=True, x=1)) == ('exit', dict(changed=True, x=1))


def test_a_failed_result_is_reported_with_fail_json():
    assert outcome(lambda: dict(failed=True, msg='2 of 3 failed', changed=True)) == (
        'fail', dict(failed=True, msg='2 of 3 failed', changed=True))


def test_a_command_failure_carries_the_command_and_what_was_done_before():
    error = CliError('nixos-container start web failed: boom', ['nixos-container', 'start', 'web'], 1, '', 'boom')
    assert outcome(raising(error), partial=lambda: dict(actions=[['a']], changed=True)) == ('fail', dict(
        msg='nixos-container start web failed: boom', cmd=['nixos-container', 'start', 'web'], rc=1,
        stdout='', stderr='boom', actions=[['a']], changed=True))


@pytest.mark.parametrize('error', [ValueError('name: bad'), InputError('name: bad'), PlanError('name: bad'),
                                   OSError('name: bad'), NetlinkError('name: bad'), NatSpecError('name: bad')])
def test_bad_input_and_host_errors_fail_with_their_message(error):
    assert outcome(raising(error), partial=lambda: dict(changed=False)) == ('fail', dict(msg='name: bad',
                                                                                         changed=False))


def test_an_unexpected_error_is_not_hidden():
    with pytest.raises(KeyError):
        run_module(FakeModule(), raising(KeyError('x')))


def test_one_error_hierarchy():
    for error_type in (CliError, InputError, PlanError, NatSpecError, NetlinkError, PoolError):
        assert issubclass(error_type, NixfleetError), error_type
    for error_type in (InputError, PlanError, NatSpecError, PoolError):
        assert issubclass(error_type, ValueError), error_type     # bad input: what callers catch as ValueError


def test_binary_lookup_searches_nixos_paths_once_per_name():
    module = FakeModule()
    which = binary_finder(module)
    assert which('nft') == '/bin/nft'
    assert which('nft') == '/bin/nft'
    assert which('iptables') is None
    assert module.lookups == [('nft', tuple(SEARCH_DIRS)), ('iptables', tuple(SEARCH_DIRS))]
    assert SEARCH_DIRS[0] == '/run/current-system/sw/bin'


def test_an_atomic_write_replaces_the_whole_file_and_leaves_no_temporary(tmp_path):
    path = str(tmp_path / 'web.conf')
    write_file_atomically(path, 'A=1\n')
    write_file_atomically(path, 'A=2\n', mode=0o600)
    with open(path) as f:
        assert f.read() == 'A=2\n'
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert os.listdir(str(tmp_path)) == ['web.conf']


def test_a_failed_atomic_write_keeps_the_old_file(tmp_path):
    path = str(tmp_path / 'web.conf')
    write_file_atomically(path, 'A=1\n')
    with pytest.raises(TypeError):
        write_file_atomically(path, b'not text')
    with open(path) as f:
        assert f.read() == 'A=1\n'
    assert os.listdir(str(tmp_path)) == ['web.conf']
