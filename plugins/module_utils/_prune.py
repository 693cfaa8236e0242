# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The shared systems (``_build``) that no container uses any more, removed after a grace period.

This module_util is PRIVATE to the collection: it may change without notice.

Each distinct system is built into a profile of its own under BUILDS_PROFILE_DIR, a garbage
collector root (Nix roots every link under /nix/var/nix/profiles), with its configuration in
BUILDS_CONFIG_DIR. A container that uses the system holds it in its own profile
(/nix/var/nix/profiles/per-container/NAME: its current system and every generation it keeps for a
rollback), so the shared profile only matters while no container holds the system: between a build
and the batch that sets it, and as a cache for the next container with that configuration. The rule:

- a system is *used* when a link under /nix/var/nix/profiles/per-container points at it (any
  generation of any container's profile, and what a guest keeps in its own profiles there): read
  from the links, not from what the run planned;
- a shared profile is *fresh* for GRACE seconds after a run last touched it (the newest mtime of its
  links and of its configuration: a build rewrites both, ``nix-env --set`` makes or switches a link),
  so that a concurrent run's build survives until its batches set it;
- the systems the calling run builds or was given (``systems``) are kept whatever their age;
- a stale profile (not fresh, not kept) loses every generation whose system is unused; when none is
  left, the profile link and its configuration go too. Store paths are never deleted here:
  ``nix-collect-garbage`` frees them once nothing roots them.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import posixpath
import re
import time

from ansible_collections.nixfleet.containers.plugins.module_utils._build import BUILDS_CONFIG_DIR, BUILDS_PROFILE_DIR, KEY_LENGTH
from ansible_collections.nixfleet.containers.plugins.module_utils._paths import PROFILES_ROOT

STORE_DIR = '/nix/store'
# A day: longer than a rollout's build-to-last-batch time, short enough not to matter on disk.
DEFAULT_GRACE = 86400
_PROFILE_LINK = re.compile(r'^([0-9a-f]{%d})(?:-([0-9]+)-link)?\Z' % KEY_LENGTH)
_MAX_HOPS = 16


class SharedProfile(object):
    """One profile under BUILDS_PROFILE_DIR: its generations {number: store path}, the one its
    link points at, and the newest mtime of its links and configuration."""

    def __init__(self, key, generations=None, current=None, touched=0.0):
        self.key = key
        self.generations = dict(generations or {})
        self.current = current
        self.touched = touched

    def __repr__(self):
        return 'SharedProfile(%r, %r, %r, %r)' % (self.key, self.generations, self.current, self.touched)


def prune_plan(profiles, used, keep, now, grace):
    """The pure rule: ``{key: [generation numbers to remove, or None for the whole profile]}``.

    PROFILES: SharedProfile list; USED: the store paths containers hold; KEEP: keys the run builds or
    was given; NOW, GRACE: seconds.
    """
    plan = {}
    for profile in profiles:
        if profile.key in keep or now - profile.touched < grace:
            continue
        unused = sorted(n for n, path in profile.generations.items() if path not in used)
        if len(unused) == len(profile.generations):
            plan[profile.key] = None
        else:
            # The profile stays while a container holds one of its systems; its link keeps pointing
            # at a generation that exists.
            stale = [n for n in unused if n != profile.current]
            if stale:
                plan[profile.key] = stale
    return plan


def store_path(target):
    """The top-level store path of TARGET (/nix/store/HASH-NAME/...), or None."""
    if not target.startswith(STORE_DIR + '/'):
        return None
    name = target[len(STORE_DIR) + 1:].split('/', 1)[0]
    return posixpath.join(STORE_DIR, name) if name else None


def _resolve(path, readlink):
    """The store path a chain of links from PATH ends in (relative links as Nix writes them), or None."""
    for dummy in range(_MAX_HOPS):
        try:
            target = readlink(path)
        except OSError:
            return None
        target = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
        found = store_path(target)
        if found:
            return found
        path = target
    return None


def used_systems(root=PROFILES_ROOT):
    """Every store path a link under ROOT (the containers' profiles) points at."""
    used = set()
    for directory, dirs, files in os.walk(root):
        for entry in dirs + files:
            path = posixpath.join(directory, entry)
            if os.path.islink(path):
                found = _resolve(path, os.readlink)
                if found:
                    used.add(found)
    return used


def shared_profiles(directory=BUILDS_PROFILE_DIR, config_dir=BUILDS_CONFIG_DIR):
    """The SharedProfile of every key under DIRECTORY (links that vanish meanwhile are skipped)."""
    try:
        entries = os.listdir(directory)
    except OSError:
        return []
    found = {}
    for entry in entries:
        match = _PROFILE_LINK.match(entry)
        path = posixpath.join(directory, entry)
        if not match or not os.path.islink(path):
            continue
        key, number = match.group(1), match.group(2)
        profile = found.setdefault(key, SharedProfile(key))
        try:
            profile.touched = max(profile.touched, os.lstat(path).st_mtime)
            if number is None:
                profile.current = _generation_number(os.readlink(path), key)
            else:
                profile.generations[int(number)] = _resolve(path, os.readlink)
        except OSError:
            continue
    for key, profile in found.items():
        try:
            profile.touched = max(profile.touched, os.stat(posixpath.join(config_dir, key + '.nix')).st_mtime)
        except OSError:
            pass
    return [found[key] for key in sorted(found)]


def _generation_number(target, key):
    match = _PROFILE_LINK.match(posixpath.basename(target))
    return int(match.group(2)) if match and match.group(1) == key and match.group(2) else None


class Pruner(object):
    """What to prune on this host, and the pruning itself (``_containers.ContainerSet`` calls it
    after its changes, under the collection's host lock)."""

    def __init__(self, grace=DEFAULT_GRACE, keep=(), keep_paths=(), now=None,
                 directory=BUILDS_PROFILE_DIR, config_dir=BUILDS_CONFIG_DIR, root=PROFILES_ROOT):
        self.directory, self.config_dir = directory, config_dir
        self.profiles = dict((p.key, p) for p in shared_profiles(directory, config_dir))
        used = used_systems(root) | set(keep_paths)
        self.plan = prune_plan(self.profiles.values(), used, set(keep), time.time() if now is None else now, grace)

    def result(self):
        """{key: [store paths no longer rooted by the shared profile]}."""
        return dict((key, sorted(set(self._paths(key, numbers)))) for key, numbers in self.plan.items())

    def diff(self):
        """One diff of BUILDS_PROFILE_DIR: each pruned link before, nothing after."""
        lines = []
        for key, numbers in sorted(self.plan.items()):
            profile = self.profiles[key]
            for number in sorted(profile.generations) if numbers is None else numbers:
                lines.append('%s-%d-link -> %s\n' % (key, number, profile.generations[number]))
            if numbers is None:
                lines.append('%s (and %s)\n' % (key, posixpath.join(self.config_dir, key + '.nix')))
        return dict(before_header=self.directory, after_header=self.directory, before=''.join(lines), after='')

    def apply(self):
        """Remove the planned links (the profile link first, so no one reads a half-pruned
        profile) and, for a whole profile, its configuration."""
        for key, numbers in sorted(self.plan.items()):
            profile = self.profiles[key]
            if self._touched_since(profile):
                # A run outside the host lock (a build host's import) set it meanwhile.
                del self.plan[key]
                continue
            links = []
            if numbers is None:
                links.append(posixpath.join(self.directory, key))
            links += [posixpath.join(self.directory, '%s-%d-link' % (key, n))
                      for n in (sorted(profile.generations) if numbers is None else numbers)]
            if numbers is None:
                links.append(posixpath.join(self.config_dir, key + '.nix'))
            for path in links:
                try:
                    os.unlink(path)
                except OSError as error:
                    if os.path.lexists(path):
                        raise error

    def _touched_since(self, profile):
        paths = [posixpath.join(self.directory, profile.key), posixpath.join(self.config_dir, profile.key + '.nix')]
        for path in paths:
            try:
                if os.lstat(path).st_mtime > profile.touched:
                    return True
            except OSError:
                pass
        return False

    def _paths(self, key, numbers):
        profile = self.profiles[key]
        return [p for n, p in profile.generations.items() if p and (numbers is None or n in numbers)]
