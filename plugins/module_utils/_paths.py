# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where a NixOS host keeps its containers (facts §2.1, §2.5, §2.6).

This module_util is PRIVATE to the collection: it may change without notice.

Functions that look at the file system take the look-up callables as arguments
(``exists``, ``listdir``, ``readlink``) so they can be tested without a host.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import posixpath
import re

LOCK_PATH = '/run/lock/nixos-container'
PROFILES_ROOT = '/nix/var/nix/profiles/per-container'
EPHEMERAL_ROOT = '/run/nixos-containers'

MODERN_CONF_DIR = '/etc/nixos-containers'
MODERN_STATE_DIR = '/var/lib/nixos-containers'
LEGACY_CONF_DIR = '/etc/containers'
LEGACY_STATE_DIR = '/var/lib/containers'

# podman shares /etc/containers with the legacy layout (facts P-4). The CLI skips only the
# first three; we also skip storage.conf and mounts.conf, because treating podman's
# storage.conf as a container "storage" could lead to destroying /var/lib/containers/storage.
PODMAN_CONF_FILES = frozenset([
    'libpod.conf', 'containers.conf', 'registries.conf', 'storage.conf', 'mounts.conf',
])
CONF_SUFFIX = '.conf'

_GENERATION_LINK = re.compile(r'^system-([0-9]+)-link\Z')


class Layout(object):
    """The conf and state directories of one host, and every per-container path."""

    def __init__(self, conf_dir, state_dir):
        self.conf_dir = conf_dir
        self.state_dir = state_dir

    def __repr__(self):
        return 'Layout(%r, %r)' % (self.conf_dir, self.state_dir)

    def __eq__(self, other):
        return (isinstance(other, Layout) and self.conf_dir == other.conf_dir
                and self.state_dir == other.state_dir)

    def __ne__(self, other):
        return not self == other

    def __hash__(self):
        return hash((self.conf_dir, self.state_dir))

    @classmethod
    def modern(cls):
        """stateVersion 22.05 and later."""
        return cls(MODERN_CONF_DIR, MODERN_STATE_DIR)

    @classmethod
    def legacy(cls):
        """stateVersion before 22.05."""
        return cls(LEGACY_CONF_DIR, LEGACY_STATE_DIR)

    @property
    def is_legacy(self):
        return self.conf_dir == LEGACY_CONF_DIR

    @classmethod
    def detect(cls, exists=os.path.exists, listdir=os.listdir):
        """The layout in use: modern unless only /etc/containers holds container confs."""
        if exists(MODERN_CONF_DIR):
            return cls.modern()
        try:
            entries = listdir(LEGACY_CONF_DIR)
        except OSError:
            return cls.modern()
        if any(_is_container_conf(entry, legacy=True) for entry in entries):
            return cls.legacy()
        return cls.modern()

    def conf_path(self, name):
        return posixpath.join(self.conf_dir, name + CONF_SUFFIX)

    def root_dir(self, name):
        return posixpath.join(self.state_dir, name)

    def configuration_nix(self, name):
        return posixpath.join(self.root_dir(name), 'etc', 'nixos', 'configuration.nix')

    def profile_dir(self, name):
        return posixpath.join(PROFILES_ROOT, name)

    def system_profile(self, name):
        return posixpath.join(self.profile_dir(name), 'system')

    def ephemeral_root_dir(self, name):
        return posixpath.join(EPHEMERAL_ROOT, name)

    def list_names(self, listdir=os.listdir):
        """Sorted container names, as ``nixos-container list`` prints them (podman's skipped).

        A missing conf directory means no containers.
        """
        try:
            entries = listdir(self.conf_dir)
        except OSError:
            return []
        legacy = self.is_legacy
        return sorted(entry[:-len(CONF_SUFFIX)] for entry in entries
                      if _is_container_conf(entry, legacy))


def _is_container_conf(entry, legacy):
    if not entry.endswith(CONF_SUFFIX) or entry == CONF_SUFFIX:
        return False
    return not (legacy and entry in PODMAN_CONF_FILES)


def generation_links(profile_dir, listdir, readlink):
    """``[(number, target), ...]`` of the ``system-N-link`` profile links, by number."""
    links = []
    for entry in listdir(profile_dir):
        match = _GENERATION_LINK.match(entry)
        if match:
            links.append((int(match.group(1)), readlink(posixpath.join(profile_dir, entry))))
    return sorted(links)


def current_generation(profile_dir, readlink):
    """The generation ``system`` points at (``system -> system-N-link``), or None."""
    try:
        target = readlink(posixpath.join(profile_dir, 'system'))
    except OSError:
        return None
    match = _GENERATION_LINK.match(posixpath.basename(target))
    return int(match.group(1)) if match else None
