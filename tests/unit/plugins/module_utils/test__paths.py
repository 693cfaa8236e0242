# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import os

import pytest

from ansible_collections.nixfleet.containers.plugins.module_utils._paths import (
    EPHEMERAL_ROOT,
    LOCK_PATH,
    PROFILES_ROOT,
    Layout,
    current_generation,
    generation_links,
)


def fake_fs(tree):
    """exists/listdir over {dir: [entries]}; a missing dir raises ENOENT like os.listdir."""
    def exists(path):
        return path in tree

    def listdir(path):
        if path not in tree:
            raise OSError(errno.ENOENT, 'No such file or directory', path)
        return list(tree[path])
    return exists, listdir


def test_constants():
    assert LOCK_PATH == '/run/lock/nixos-container'
    assert PROFILES_ROOT == '/nix/var/nix/profiles/per-container'
    assert EPHEMERAL_ROOT == '/run/nixos-containers'


def test_modern_layout_paths():
    layout = Layout.modern()
    assert (layout.conf_dir, layout.state_dir) == ('/etc/nixos-containers', '/var/lib/nixos-containers')
    assert layout.conf_path('web') == '/etc/nixos-containers/web.conf'
    assert layout.root_dir('web') == '/var/lib/nixos-containers/web'
    assert layout.configuration_nix('web') == '/var/lib/nixos-containers/web/etc/nixos/configuration.nix'
    assert layout.profile_dir('web') == '/nix/var/nix/profiles/per-container/web'
    assert layout.system_profile('web') == '/nix/var/nix/profiles/per-container/web/system'
    assert layout.ephemeral_root_dir('web') == '/run/nixos-containers/web'


def test_legacy_layout_paths():
    layout = Layout.legacy()
    assert (layout.conf_dir, layout.state_dir) == ('/etc/containers', '/var/lib/containers')
    assert layout.conf_path('db') == '/etc/containers/db.conf'
    assert layout.root_dir('db') == '/var/lib/containers/db'
    # Profiles do not depend on the layout.
    assert layout.profile_dir('db') == Layout.modern().profile_dir('db')


@pytest.mark.parametrize('tree, expected', [
    ({}, Layout.modern()),
    ({'/etc/nixos-containers': []}, Layout.modern()),
    # Both exist: the modern directory wins even if /etc/containers holds confs.
    ({'/etc/nixos-containers': [], '/etc/containers': ['old.conf']}, Layout.modern()),
    ({'/etc/containers': ['web.conf']}, Layout.legacy()),
    # Only podman's files: that is podman, not legacy NixOS containers (facts P-4).
    ({'/etc/containers': ['registries.conf', 'storage.conf', 'policy.json', 'libpod.conf',
                          'containers.conf', 'mounts.conf', 'registries.d']}, Layout.modern()),
    ({'/etc/containers': ['policy.json', 'registries.conf', 'db.conf']}, Layout.legacy()),
    ({'/etc/containers': ['web.conf.bak', 'notes.txt']}, Layout.modern()),
])
def test_detect(tree, expected):
    exists, listdir = fake_fs(tree)
    assert Layout.detect(exists=exists, listdir=listdir) == expected


def test_list_names_modern_sorted():
    entries = ['web.conf', 'db.conf', 'a-1.conf', 'x.conf.tmp', 'storage.conf', '.conf', 'README']
    listdir = fake_fs({'/etc/nixos-containers': entries})[1]
    # storage.conf is a container in the modern directory: podman does not live there.
    assert Layout.modern().list_names(listdir=listdir) == ['a-1', 'db', 'storage', 'web']


def test_list_names_legacy_skips_podman():
    listdir = fake_fs({'/etc/containers': ['web.conf', 'registries.conf', 'storage.conf',
                                           'libpod.conf', 'containers.conf', 'mounts.conf']})[1]
    assert Layout.legacy().list_names(listdir=listdir) == ['web']


def test_list_names_missing_directory():
    listdir = fake_fs({})[1]
    assert Layout.modern().list_names(listdir=listdir) == []


def test_generations_on_a_real_profile_dir(tmp_path):
    profile = tmp_path / 'web'
    profile.mkdir()
    for number in (1, 2, 10):
        os.symlink('/nix/store/%d-nixos-system-web' % number, str(profile / ('system-%d-link' % number)))
    os.symlink('system-10-link', str(profile / 'system'))
    (profile / 'system-3-link.tmp').write_text('not a generation')
    links = generation_links(str(profile), listdir=os.listdir, readlink=os.readlink)
    assert links == [(1, '/nix/store/1-nixos-system-web'), (2, '/nix/store/2-nixos-system-web'),
                     (10, '/nix/store/10-nixos-system-web')]
    assert current_generation(str(profile), readlink=os.readlink) == 10


def test_current_generation_absolute_target_and_missing(tmp_path):
    profile = tmp_path / 'db'
    profile.mkdir()
    assert current_generation(str(profile), readlink=os.readlink) is None
    os.symlink(str(profile / 'system-4-link'), str(profile / 'system'))
    assert current_generation(str(profile), readlink=os.readlink) == 4


def test_current_generation_unexpected_target(tmp_path):
    profile = tmp_path / 'odd'
    profile.mkdir()
    os.symlink('/nix/store/abc-nixos-system', str(profile / 'system'))
    assert current_generation(str(profile), readlink=os.readlink) is None
