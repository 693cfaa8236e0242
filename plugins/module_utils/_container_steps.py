# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A container plan's steps with their arguments, and the operations that carry them out.

This module_util is PRIVATE to the collection: it may change without notice.

:func:`bind` gives each step the planner (``_plan``) named everything its operation needs
(the name, the CLI's arguments, paths, file texts), so ``_steps.execute`` runs the plan with
:class:`ContainerOperations` alone. :func:`restore_steps` is the plan that puts a container
back after a failed apply, run by the same executor.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

from ansible_collections.nixfleet.containers.plugins.module_utils._conf import render_conf
from ansible_collections.nixfleet.containers.plugins.module_utils._host import FileLock, read_file, write_file_atomically
from ansible_collections.nixfleet.containers.plugins.module_utils._nix import render_configuration_nix
from ansible_collections.nixfleet.containers.plugins.module_utils._paths import LOCK_PATH
from ansible_collections.nixfleet.containers.plugins.module_utils._state import dropin_path, wants_link_path
from ansible_collections.nixfleet.containers.plugins.module_utils._steps import Plan, Step

# What a wants-link points to: the template the imperative containers run as (facts §5.1).
TEMPLATE_UNIT = '/etc/systemd/system/container@.service'
# Restart=on-failure (facts §5.2) retries a failed start; after five starts in 10 s systemd
# refuses the next one until the unit's failure is reset.
RETRYING_STATES = ('failed', 'activating')


def bind(plan, name, layout, params, current, desired):
    """PLAN with every step's arguments, from the desired state and the run's parameters."""
    unit_dir = params['systemd_unit_dir']
    options = desired.get('options') or {}
    private = options.get('private_network', True)
    # After a build, the conf records the system built (read then) and the config_file digest.
    record = dict(conf_path=layout.conf_path(name), conf=desired['conf'], profile=layout.system_profile(name),
                  config_digest=desired.get('config_digest'))
    guest = dict(config_file=params['config_file'], flake=options.get('flake'), flake_attr=options.get('flake_attr'),
                 nixos_path=params['nixos_path'])

    def arguments(op):
        if op == 'destroy':
            return dict(name=name, unit_state=(current or {}).get('active_state'))
        if op in ('stop', 'reload'):
            return dict(name=name)
        if op == 'start':
            return dict(name=name, timeout=params['start_timeout'],
                        reset_failed=(current or {}).get('active_state') in RETRYING_STATES)
        if op == 'create':
            return dict(guest, name=name, record=record,
                        host_address=options.get('host_address') if private else None,
                        local_address=options.get('local_address') if private else None,
                        bridge=options.get('host_bridge') if private else None,
                        port=desired['conf'].get('HOST_PORT') if private else None,
                        auto_start=bool(options.get('auto_start')),
                        config=desired.get('extra') if not (params['config_file'] or desired.get('system_path')) else None,
                        system_path=desired.get('system_path'))
        if op == 'update':
            return dict(guest, name=name, record=record,
                        config=desired.get('extra') if (params['config'] or params['settings']) else None)
        if op == 'set_system':
            return dict(profile=layout.system_profile(name), system_path=desired['system_path'], record=record)
        if op == 'rollback':
            return dict(profile=layout.system_profile(name))
        if op == 'write_configuration':
            return dict(path=layout.configuration_nix(name), text=render_configuration_nix(name, desired['extra']),
                        record=record)
        if op == 'write_conf' and plan.has('write_configuration'):
            # A rollback that puts configuration.nix back: the conf records the system rolled
            # back to, not the one it was built as before.
            return record
        if op == 'write_conf':
            return dict(path=layout.conf_path(name), text=render_conf(desired['conf']))
        if op == 'link':
            return dict(path=wants_link_path(unit_dir, name), wanted=desired['auto_start_link'])
        if op == 'write_dropin':
            return dict(path=dropin_path(unit_dir, name), text=desired['unit_dropin'])
        raise ValueError('no arguments for a step %r' % op)

    def operation(op):
        return 'record_system' if op == 'write_conf' and plan.has('write_configuration') else op

    return Plan(plan.action, [Step(operation(step.op), label=step.op, **arguments(step.op)) for step in plan.steps],
                plan.reasons)


def with_system(plan, system_path, name, layout, desired, running):
    """PLAN with its build done already (SYSTEM_PATH, built once for all containers of one
    configuration): ``create --system-path``, and ``update`` becomes setting the profile plus the
    reload nixos-container's update does for a running container. With --system-path the CLI
    writes no configuration.nix: a step writes it, so later updates, drift and rollback see it.
    """
    configuration = dict(path=layout.configuration_nix(name), text=render_configuration_nix(name, desired['extra']))
    steps = []
    for step in plan.steps:
        if step.op == 'create':
            prebuilt = dict(step.args, system_path=system_path, config=None, config_file=None, flake=None, flake_attr=None)
            steps.append(Step('create', **prebuilt))
            steps.append(Step('write_configuration', record=step.args['record'], **configuration))
        elif step.op == 'update':
            steps.append(Step('set_system', label='update', profile=layout.system_profile(name),
                              system_path=system_path, record=step.args['record']))
            steps.append(Step('write_configuration', **configuration))
            if running and not plan.has('stop'):
                steps.append(Step('reload', name=name))
        else:
            steps.append(step)
    return Plan(plan.action, steps, plan.reasons, plan.before, plan.after)


def restore_steps(name, layout, unit_dir, saved, now, start_timeout):
    """The steps that put SAVED (``_container_checks.snapshot``) back; NOW is the container now."""
    steps = []
    if now.get('active_state') not in (None, 'inactive'):
        steps.append(Step('stop', name=name))
    steps.append(Step('write_conf', path=layout.conf_path(name), text=saved['conf_text']))
    path = layout.configuration_nix(name)
    if saved['configuration_nix'] is not None and read_file(path) != saved['configuration_nix']:
        steps.append(Step('write_configuration', path=path, text=saved['configuration_nix']))
    profile = layout.system_profile(name)
    if saved['generation'] and profile_target(profile) != saved['system_path']:
        steps.append(Step('switch_generation', profile=profile, generation=saved['generation']))
    path = dropin_path(unit_dir, name)
    if (saved['unit_dropin'] or '') != (read_file(path) or ''):
        steps.append(Step('write_dropin', path=path, text=saved['unit_dropin'] or ''))
    path = wants_link_path(unit_dir, name)
    if saved['auto_start'] != os.path.lexists(path):
        steps.append(Step('link', path=path, wanted=saved['auto_start']))
    if saved['running']:
        # The failed start may have used up the start limit.
        steps.append(Step('start', name=name, timeout=start_timeout,
                          reset_failed=now.get('active_state') in RETRYING_STATES))
    elif now.get('active_state') in RETRYING_STATES:
        # It was stopped before: stopped again, not left failed (the host's systemd degraded).
        steps.append(Step('reset_failed', name=name))
    return steps


class ContainerOperations(object):
    """What a container step can do on the host: RUNNER (``_cli.Runner``) and the files."""

    def __init__(self, runner):
        self.runner = runner

    # nixos-container and systemctl ------------------------------------------------------------
    def create(self, name, record, **cli):
        self.runner.create(name, **cli)
        self.record_system(**record)

    def update(self, name, record, **cli):
        self.runner.update(name, **cli)
        self.record_system(**record)

    def destroy(self, name, unit_state=None):
        # nixos-container destroy stops only an active unit: one retrying a failed start
        # (Restart=on-failure) would start again after it and recreate the root; a failed one
        # would outlive its container.
        if unit_state not in (None, 'active', 'inactive'):
            if unit_state != 'failed':
                self.runner.stop(name)
            # A stop that ended a start attempt can leave the unit failed.
            self.runner.reset_failed(name)
        self.runner.destroy(name)

    def stop(self, name):
        self.runner.stop(name)

    def start(self, name, timeout, reset_failed=False):
        if reset_failed:
            self.runner.reset_failed(name)
        self.runner.start(name, timeout=timeout)

    def reload(self, name):
        self.runner.reload(name)

    def reset_failed(self, name):
        self.runner.reset_failed(name)

    # the profile ---------------------------------------------------------------------------------
    def set_system(self, profile, system_path, record):
        self.runner.set_profile(profile, system_path)
        self.record_system(**record)

    def rollback(self, profile):
        self.runner.rollback_profile(profile)

    def switch_generation(self, profile, generation):
        self.runner.call([self.runner.nix_env, '-p', profile, '--switch-generation', str(generation)],
                         'nix-env --switch-generation %s of %s' % (generation, profile))

    # files ---------------------------------------------------------------------------------------
    def write_conf(self, path, text):
        with FileLock(LOCK_PATH):
            if read_file(path) != text:
                write_file_atomically(path, text)

    def write_configuration(self, path, text, record=None):
        """configuration.nix as given, and (with RECORD) the conf records the system it was built as."""
        directory = os.path.dirname(path)
        if not os.path.isdir(directory):
            os.makedirs(directory, 0o755)
        write_file_atomically(path, text)
        if record is not None:
            self.record_system(**record)

    def record_system(self, conf_path, conf, profile, config_digest=None):
        """Write the desired conf plus what was just built, so drift can be seen later."""
        conf = dict(conf)
        system = profile_target(profile)
        if system:
            conf['NIXFLEET_SYSTEM'] = system
        if config_digest:
            conf['NIXFLEET_CONFIG_SHA256'] = config_digest
        self.write_conf(conf_path, render_conf(conf))

    def link(self, path, wanted):
        """machines.target wants container@NAME.service (facts §5.1, §9), or no longer does."""
        if not wanted:
            if os.path.lexists(path):
                os.unlink(path)
            return
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = path + '.nixfleet-tmp'
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(TEMPLATE_UNIT, tmp)
        os.rename(tmp, path)

    def write_dropin(self, path, text):
        if not text:
            if os.path.lexists(path):
                os.unlink(path)
            try:
                os.rmdir(os.path.dirname(path))
            except OSError:
                pass
        else:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            write_file_atomically(path, text)
        # systemd reads drop-ins when it loads the unit: make the running manager see it.
        self.runner.call([self.runner.systemctl, 'daemon-reload'], 'systemctl daemon-reload')


def profile_target(profile):
    try:
        return os.path.realpath(profile) if os.path.lexists(profile) else None
    except OSError:
        return None
