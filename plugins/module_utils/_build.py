# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Each distinct guest system of a run built once, before any container changes (issue 14).

This module_util is PRIVATE to the collection: it may change without notice.

``nixos-container create --config`` / ``update`` evaluate and build ``<nixpkgs/nixos>`` for every
container, although containers with the same configuration and the same nixpkgs get the same
system but for its host name. Here the system is built from the configuration WITHOUT the name
(``networking.hostName`` left empty: systemd-nspawn gives the guest its machine name, and NixOS
names such a system ``nixos-system-unnamed-VERSION``), so equal configurations give one system:
the same text and the same nixpkgs, the same key. It is built the way nixos-container builds
(``nix-env -p PROFILE -I nixos-config=FILE -f <nixpkgs/nixos> --set -A system``), into a profile
of its own that keeps it from the garbage collector; each container then gets it with
``nixos-container create --system-path`` or ``nix-env -p ITS_PROFILE --set`` (what ``update``
does after its build), and its own configuration.nix as nixos-container writes it.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import hashlib
import os
import posixpath

from ansible_collections.nixfleet.containers.plugins.module_utils._host import write_file_atomically
from ansible_collections.nixfleet.containers.plugins.module_utils._nix import render_settings_body

# One profile per distinct system (a GC root), and the configuration it was built from.
BUILDS_PROFILE_DIR = '/nix/var/nix/profiles/nixfleet-systems'
BUILDS_CONFIG_DIR = '/var/lib/nixfleet/systems'
DEFAULT_NIXOS = '<nixpkgs/nixos>'
KEY_LENGTH = 32

_SHARED_HEAD = ('{ config, lib, pkgs, ... }:\n'
                '\n'
                '{ boot.isNspawnContainer = true;\n'
                '  # Shared by every container with this configuration: the guest takes its\n'
                '  # container name as host name from systemd-nspawn.\n'
                '  networking.hostName = lib.mkDefault "";\n'
                '  networking.useDHCP = false;\n'
                '  ')
_SHARED_TAIL = '\n}\n'


def guest_extra(config, settings):
    """The text nixos-container splices into its template for CONFIG and SETTINGS (the options of
    nixos_container): CONFIG as given, then one line per leaf of SETTINGS. Raises ValueError for
    SETTINGS that are not data Nix can hold."""
    parts = [config.strip('\n')] if config else []
    if settings:
        parts.append(render_settings_body(settings))
    return '\n'.join(parts)


def shared_configuration(extra):
    """The configuration.nix of a system shared by the containers whose EXTRA text is EXTRA."""
    return _SHARED_HEAD + (extra or '') + _SHARED_TAIL


def system_key(text, nixos_path=None, digest=None):
    """Same configuration TEXT, same nixpkgs (NIXOS_PATH, else the host's <nixpkgs/nixos>), same
    content of an imported config_file (DIGEST): the same system."""
    parts = [text, nixos_path or DEFAULT_NIXOS, digest or '']
    return hashlib.sha256('\0'.join(parts).encode('utf-8', 'surrogateescape')).hexdigest()[:KEY_LENGTH]


class Build(object):
    """One distinct system of the run: its key, text, nixpkgs and the containers that use it."""

    def __init__(self, key, text, nixos_path):
        self.key = key
        self.text = text
        self.nixos_path = nixos_path
        self.containers = []
        self.path = None
        self.error = None

    @property
    def profile(self):
        return posixpath.join(BUILDS_PROFILE_DIR, self.key)

    @property
    def config_file(self):
        return posixpath.join(BUILDS_CONFIG_DIR, self.key + '.nix')


def nix_error(stderr, stdout=''):
    """Nix's own words from a failed build: its last `error:` with its text (Nix prints the trace
    first and the cause last), else the last lines of what it printed."""
    lines = [line.strip() for line in (stderr or stdout or '').splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith("(use '--show-trace'")]
    causes = [index for index, line in enumerate(lines) if line.startswith('error:') and line != 'error:']
    if causes:
        return ' '.join(lines[causes[-1]:causes[-1] + 3])[:600]
    return ' '.join(lines[-3:])[:600] or 'no message'


def build(runner, item):
    """Build ITEM (a Build) on the host; sets item.path, or item.error (Nix's message)."""
    os.makedirs(BUILDS_CONFIG_DIR, exist_ok=True)
    os.makedirs(BUILDS_PROFILE_DIR, exist_ok=True)
    write_file_atomically(item.config_file, item.text)
    rc, out, err = runner.build_system(item.profile, item.config_file, item.nixos_path or DEFAULT_NIXOS)
    if rc != 0:
        item.error = nix_error(err, out)
        return item
    item.path = os.path.realpath(item.profile)
    return item
