# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading a container: which conf is declarative, the unit's name."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import subprocess

import pytest

from ansible_collections.nixfleet.containers.plugins.module_utils._state import (
    DECLARATIVE_SH,
    container_of_unit,
    is_declarative,
    unit_name,
)


def _conf(tmp_path, kind):
    store = tmp_path / 'store-web.conf'
    store.write_text('PRIVATE_NETWORK=1\n')
    store.chmod(0o444)
    conf = tmp_path / 'web.conf'
    if kind == 'link':
        conf.symlink_to(store)
    else:
        conf.write_text('PRIVATE_NETWORK=1\n')
        conf.chmod(dict(writable=0o644, owner_only=0o600, store_copy=0o444, group_writable=0o464)[kind])
    return str(conf)


@pytest.mark.parametrize('kind, declarative', [
    ('link', True), ('store_copy', True), ('writable', False), ('owner_only', False), ('group_writable', False)])
def test_declarative_is_a_link_or_a_file_no_one_may_write(tmp_path, kind, declarative):
    conf = _conf(tmp_path, kind)
    assert is_declarative(conf) is declarative
    # The inventory's remote script asks the host's shell the same question: the same answer.
    shell = subprocess.run(['/bin/sh', '-c', DECLARATIVE_SH, 'sh'], env=dict(os.environ, conf=conf), check=False)
    assert (shell.returncode == 0) is declarative


def test_a_missing_conf_is_not_declarative(tmp_path):
    assert not is_declarative(str(tmp_path / 'gone.conf'))


def test_the_unit_name_and_back():
    assert unit_name('web') == 'container@web.service'
    assert container_of_unit(unit_name('web')) == 'web'
    assert container_of_unit('container@web') == 'web'
    assert container_of_unit('nginx.service') is None
