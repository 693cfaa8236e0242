# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runners for nixos-container, systemctl and nix-env: argv lists only, error texts mapped.

This module_util is PRIVATE to the collection: it may change without notice.

Every call goes through one ``run(argv, data=None) -> (rc, stdout, stderr)`` callable that
the module supplies (``AnsibleModule.run_command`` in practice), so nothing here builds a
shell string and everything can be exercised without a host.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

from ansible_collections.nixfleet.containers.plugins.module_utils._errors import NixfleetError
from ansible_collections.nixfleet.containers.plugins.module_utils._state import container_of_unit, unit_name

SYSTEMCTL_PROPERTIES = ('Id', 'ActiveState', 'SubState', 'Result', 'MainPID')
# How much of a unit's journal a failure message quotes.
JOURNAL_LINES = 8
MAX_JOURNAL_LINE = 240

# stderr texts of nixos-container (facts §1.5) and what they mean to an operator.
_ERROR_TEXTS = (
    ('already exists', 'a container of that name already exists (its conf file is present)'),
    ('is too long', 'the container name is longer than 11 characters'),
    ('invalid container name', 'the container name has characters nixos-container refuses'),
    ('out of IP addresses', 'every 10.233.N.1/.2 pair is taken; give host_address and local_address'),
    ('failed to build initial container configuration',
     'building the initial NixOS configuration failed; nothing was left behind (see stderr)'),
    ('failed to set initial container configuration',
     'setting the initial system failed (is system_path a valid store path?); nothing was left behind'),
    ('failed to build container configuration', 'building the NixOS configuration failed (see stderr)'),
    ('failed to set container configuration', 'setting the new system in the profile failed (see stderr)'),
    ('failed to build container from flake', 'building the flake failed (see stderr)'),
    ('boot.isNspawnContainer', 'NixOS 25.11 and newer require boot.isNspawnContainer = true in the '
     'container configuration; refresh it (give config again)'),
    ('cannot destroy declarative container',
     'the container is declarative (defined in the host configuration.nix); remove it there'),
    ('does not exist', 'the container does not exist'),
    ('failed to start container', 'systemctl could not start the container'),
    ('failed to stop container', 'systemctl could not stop the container'),
    ('failed to reload container', 'reloading the running container failed (switch-to-configuration test '
     'inside the container; see stderr)'),
    ('unable to get container\'s main PID', 'the container is not running'),
    ('Unknown option', 'this nixos-container does not know an option the module passed (an older NixOS?)'),
)


class CliError(NixfleetError):
    """A command failed; carries what fail_json reports (message, argv, exit status, output)."""


def explain(stderr):
    """The operator-level meaning of a nixos-container error text, or None."""
    for needle, meaning in _ERROR_TEXTS:
        if needle in (stderr or ''):
            return meaning
    return None


def flake_arg(flake, flake_attr):
    """``ref#attr`` as nixos-container's --flake wants it (the attribute defaults to container)."""
    return '%s#%s' % (flake, flake_attr) if flake_attr else flake


class Runner(object):
    """Runs the host's commands and records every argv that ran (the module's ``actions``)."""

    def __init__(self, run, nixos_container='nixos-container', systemctl='systemctl',
                 nix_env='nix-env', timeout='timeout', scratch_dir=None, journalctl=None):
        self._run = run
        # Flake builds leave a `.tmp` GC-root link in the working directory (facts P-12):
        # run them in a scratch directory the caller removes.
        self.scratch_dir = scratch_dir
        self.nixos_container = nixos_container
        self.systemctl = systemctl
        self.nix_env = nix_env
        self.timeout = timeout
        self.journalctl = journalctl
        self.actions = []

    def call(self, argv, what, data=None, record=True, cwd=None):
        if record:
            self.actions.append(list(argv))
        rc, out, err = self._run(argv, data=data, cwd=cwd) if cwd else self._run(argv, data=data)
        if rc != 0:
            meaning = explain(err)
            detail = (err or out or '').strip().splitlines()
            last = detail[-1] if detail else 'exit status %d' % rc
            msg = '%s failed: %s' % (what, meaning or last)
            raise CliError(msg, argv, rc, out, err)
        return out

    def query(self, argv):
        """A read-only call: not recorded as an action, failure returned not raised."""
        return self._run(argv, data=None)

    # nixos-container ------------------------------------------------------------------
    def create(self, name, host_address=None, local_address=None, bridge=None, port=None,
               auto_start=False, config=None, config_file=None, flake=None, flake_attr=None,
               system_path=None, nixos_path=None):
        argv = [self.nixos_container, 'create', name]
        if host_address and local_address:
            argv += ['--host-address', host_address, '--local-address', local_address]
        if bridge:
            argv += ['--bridge', bridge]
        if port:
            argv += ['--port', port]
        if auto_start:
            argv.append('--auto-start')
        argv += _guest_args(config, config_file, flake, flake_attr, nixos_path)
        if system_path:
            argv += ['--system-path', system_path]
        return self.call(argv, 'nixos-container create %s' % name, cwd=self.scratch_dir if flake else None)

    def update(self, name, config=None, config_file=None, flake=None, flake_attr=None, nixos_path=None):
        argv = [self.nixos_container, 'update', name]
        argv += _guest_args(config, config_file, flake, flake_attr, nixos_path)
        return self.call(argv, 'nixos-container update %s' % name, cwd=self.scratch_dir if flake else None)

    def start(self, name, timeout=None):
        argv = [self.nixos_container, 'start', name]
        if timeout:
            # systemctl start waits for the guest's READY; bound the wait ourselves too.
            argv = [self.timeout, '--kill-after=10', str(int(timeout))] + argv
        try:
            return self.call(argv, 'nixos-container start %s' % name)
        except CliError as e:
            if timeout and e.rc in (124, 137):
                raise CliError('nixos-container start %s did not finish within start_timeout=%ss' % (name, timeout),
                               e.cmd, e.rc, e.stdout, e.stderr)
            raise

    def stop(self, name):
        return self.call([self.nixos_container, 'stop', name], 'nixos-container stop %s' % name)

    def destroy(self, name):
        return self.call([self.nixos_container, 'destroy', name], 'nixos-container destroy %s' % name)

    # systemctl ------------------------------------------------------------------------
    def reload(self, name):
        unit = unit_name(name)
        return self.call([self.systemctl, 'reload', unit], 'systemctl reload %s' % unit)

    def journal_tail(self, name, lines=JOURNAL_LINES):
        """The last lines container@NAME wrote (nspawn's and the unit's own words), or []."""
        if not self.journalctl:
            return []
        rc, out, err = self.query([self.journalctl, '-u', unit_name(name), '-n', str(lines),
                                   '--no-pager', '-q', '-o', 'cat'])
        if rc != 0:
            return []
        return [line.strip()[:MAX_JOURNAL_LINE] for line in out.splitlines()
                if line.strip() and line.strip() != '-- No entries --']

    def reset_failed(self, name):
        unit = unit_name(name)
        try:
            return self.call([self.systemctl, 'reset-failed', unit], 'systemctl reset-failed %s' % unit)
        except CliError as e:
            # A stopped unit that was retrying a failed start may be unloaded already: no failure to reset.
            if 'not loaded' in (e.stderr or ''):
                return ''
            raise

    def show_units(self, names):
        """ActiveState & co of container@NAME for every name systemd has loaded, in one
        ``systemctl list-units`` and one ``systemctl show`` of the loaded ones. ``show`` of a unit
        systemd has not loaded loads it from disk (about 5 ms a unit: 0.25 s for 50 stopped
        containers); a unit it has not loaded is inactive, which is what no entry means."""
        if not names:
            return {}
        argv = [self.systemctl, 'list-units', '--all', '--plain', '--no-legend', '--full'] + [unit_name(n) for n in names]
        rc, out, err = self.query(argv)
        if rc != 0:
            raise CliError('systemctl list-units failed: %s' % (err or out).strip(), argv, rc, out, err)
        names = loaded_units(out, names)
        if not names:
            return {}
        argv = [self.systemctl, 'show', '--property=%s' % ','.join(SYSTEMCTL_PROPERTIES)]
        argv += [unit_name(n) for n in names]
        rc, out, err = self.query(argv)
        if rc != 0:
            raise CliError('systemctl show failed: %s' % (err or out).strip(), argv, rc, out, err)
        return parse_systemctl_show(out, names)

    # nix-env ---------------------------------------------------------------------------
    def set_profile(self, profile, store_path):
        return self.call([self.nix_env, '-p', profile, '--set', store_path], 'nix-env --set %s' % store_path)

    def build_system(self, profile, config_file, nixos):
        """Evaluate and build NIXOS's ``system`` with CONFIG_FILE into PROFILE, as nixos-container
        does; returns (rc, stdout, stderr): a failed build is the caller's to report."""
        argv = [self.nix_env, '-p', profile, '-I', 'nixos-config=%s' % config_file, '-f', nixos, '--set', '-A', 'system']
        self.actions.append(argv)
        return self._run(argv, data=None)

    def rollback_profile(self, profile):
        return self.call([self.nix_env, '-p', profile, '--rollback'], 'nix-env --rollback of %s' % profile)


def _guest_args(config, config_file, flake, flake_attr, nixos_path):
    argv = []
    if config:
        argv += ['--config', config]
    elif config_file:
        argv += ['--config-file', config_file]
    elif flake:
        argv += ['--flake', flake_arg(flake, flake_attr)]
    if nixos_path:
        argv += ['--nixos-path', nixos_path]
    return argv


def loaded_units(text, names):
    """Those of NAMES whose container@NAME.service is in ``systemctl list-units`` output (a line
    per unit: the unit first, after a status mark on some systemd versions)."""
    listed = set()
    for line in text.splitlines():
        for word in line.split()[:2]:
            name = container_of_unit(word) if word.endswith('.service') else None
            if name is not None:
                listed.add(name)
                break
    return [name for name in names if name in listed]


def parse_systemctl_show(text, names):
    """Blocks of Key=Value separated by blank lines, one per unit, in the order asked."""
    blocks = [b for b in re.split(r'\n\s*\n', text.strip()) if b.strip()] if text.strip() else []
    units = {}
    for block in blocks:
        props = {}
        for line in block.splitlines():
            key, sep, value = line.partition('=')
            if sep:
                props[key.strip()] = value
        name = container_of_unit(props.get('Id', ''))
        if name is None and len(blocks) == len(names):
            name = names[blocks.index(block)]
        if name is not None:
            units[name] = props
    return units
