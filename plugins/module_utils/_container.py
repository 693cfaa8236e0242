# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The nixos_container module's work: options -> desired state -> plan -> commands.

This module_util is PRIVATE to the collection: it may change without notice.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import hashlib
import os

from ansible_collections.nixfleet.containers.plugins.module_utils._conf import conf_values_error, render_conf, KNOWN_KEYS
from ansible_collections.nixfleet.containers.plugins.module_utils._conf_options import conf_from_options, options_from_conf
from ansible_collections.nixfleet.containers.plugins.module_utils._host import (
    read_file,
    write_file_atomically,
    FileLock,
    HostState,
)
from ansible_collections.nixfleet.containers.plugins.module_utils._cli import CliError
from ansible_collections.nixfleet.containers.plugins.module_utils._container_checks import (
    check_address_pair,
    check_bind_sources,
    check_run_options,
    check_unit_dir,
    keep_current_guest,
    snapshot,
)
from ansible_collections.nixfleet.containers.plugins.module_utils._container_diff import container_diff
from ansible_collections.nixfleet.containers.plugins.module_utils._names import container_name_error
from ansible_collections.nixfleet.containers.plugins.module_utils._nix import (
    nix_configuration_error,
    nix_nul_error,
    nix_parse_error,
    render_configuration_nix,
    render_settings_body,
)
from ansible_collections.nixfleet.containers.plugins.module_utils._options import (
    argument_spec,
    CONF_OPTION_NAMES,
    GUEST_OPTIONS,
    NETWORK_OPTION_NAMES,
    SINGLE,
)
from ansible_collections.nixfleet.containers.plugins.module_utils._paths import LOCK_PATH
from ansible_collections.nixfleet.containers.plugins.module_utils._plan import plan as make_plan, Plan
from ansible_collections.nixfleet.containers.plugins.module_utils._state import (
    dropin_path,
    render_dropin,
    unit_properties_from_params,
    wants_link_path,
    with_unit_files,
)

# What a wants-link points to: the template the imperative containers run as (facts §5.1).
TEMPLATE_UNIT = '/etc/systemd/system/container@.service'
# settings adds to config, so it excludes the other guest sources.
# A recreate starts a new profile: there is no earlier generation to roll back to.
CONTAINER_MUTUALLY_EXCLUSIVE = [GUEST_OPTIONS] + [('settings', key) for key in GUEST_OPTIONS if key != 'config'] + [
    ('recreate', 'rollback')]


def container_argument_spec():
    """nixos_container's options: the catalogue's, and the host's binary."""
    spec = argument_spec(SINGLE)
    spec['nixos_container_bin'] = dict(type='path')
    return spec


def split_flake(flake):
    """``REF#ATTR`` -> (REF, ATTR); the CLI's split (facts §1.2 step 6), attr default container."""
    ref, sep, attr = flake.rpartition('#')
    if sep and attr and '"' not in attr:
        return ref, attr
    return flake, 'container'


class ContainerManager(object):
    """One container: options -> desired state -> plan (``prepare``) -> commands (``apply``).

    ``params`` is a dict of :func:`container_argument_spec`'s options (the module's params by
    default); ``host`` a :class:`HostState` shared with the other containers of the run.
    """

    def __init__(self, module, params=None, host=None):
        self.module = module
        self.params = module.params if params is None else params
        self.name = self.params['name']
        self.host = None
        self.runner = None
        self.layout = None
        self.current = None
        self.desired = None
        self.plan = None
        self.result = dict(changed=False, actions=[])
        if host is not None:
            self.attach(host)

    def attach(self, host):
        self.host = host
        self.layout = host.layout
        self.runner = host.new_runner()
        self.result['actions'] = self.runner.actions

    def partial_result(self):
        result = dict(self.result)
        result['changed'] = bool(result.get('actions'))
        return result

    # the run of the single module ---------------------------------------------------------------
    def run(self):
        self._validate_name()
        host = HostState(self.module, self.params['nixos_container_bin'])
        with host.mutating():
            self.attach(host)
            self.prepare()
            return self.apply()

    def prepare(self, reasons=None, check_conflicts=True):
        """Read, compute the desired state and the plan; nothing changes. Raises ValueError.

        REASONS, when given, say why in the caller's words (e.g. a removal by exclusive=true).
        With CHECK_CONFLICTS false the caller calls :meth:`check_conflicts` once every
        container of the run is planned.
        """
        self._validate_name()
        current = self.current = with_unit_files(self.host.current(self.name), self.params['systemd_unit_dir'])
        desired = self.desired = self._desired(current)
        plan = make_plan(current, desired)
        if reasons is not None:
            plan = Plan(plan.action, plan.steps, list(reasons))
        self.plan = plan
        self.result.update(action=plan.action, reasons=plan.reasons, plan=plan.as_dict(),
                           container=public_facts(current), changed=plan.changes)
        if current:
            self.result['generation_before'] = current.get('generation')
        if self.module._diff:
            self.result['diff'] = self._diff(current, desired, plan)
        self.host.plan_conf(self.name, None if desired['state'] == 'absent' else desired['conf'])
        if check_conflicts:
            self.check_conflicts()
        return plan

    def check_conflicts(self):
        """Refuse a new or changed conf that takes another container's address or host port."""
        if not set(self.plan.steps) & set(['create', 'write_conf']):
            return
        errors = self.host.conflict_errors(self.name, self.desired['conf'])
        if errors:
            raise ValueError('; '.join(errors))

    def apply(self):
        """Carry the plan out (not in check mode). Raises CliError when a command fails.

        A failed command puts an existing container's previous state back (atomic per container).
        """
        plan, current, desired = self.plan, self.current, self.desired
        if self.module.check_mode or not plan.changes:
            return self.result
        saved = snapshot(current)
        try:
            self._execute(plan, current, desired)
        except CliError as error:
            raise self._failed_apply(error, saved)
        after = with_unit_files(self.host.refresh(self.name), self.params['systemd_unit_dir'])
        if self.result.get('diff') and after:
            # What was written, bookkeeping (the system just built) included.
            self.result['diff'][0]['after'] = after['conf_text']
        self.result['container'] = public_facts(after)
        if after:
            self.result['generation_after'] = after.get('generation')
        self.result['changed'] = self._really_changed(plan, current, after)
        return self.result

    # a failed apply -------------------------------------------------------------------------
    def _failed_apply(self, error, saved):
        """Put the state before the run back (an existing container), then the error to raise.

        The message carries the unit's own words (its journal) and what was put back; the
        result carries the container as it is now.
        """
        msg = error.msg
        words = self.runner.journal_tail(self.name) if 'start' in msg or 'reload' in msg else []
        if words:
            msg += '. The unit said: %s' % ' | '.join(words)
        if saved is not None:
            try:
                self._restore(saved)
                msg += '. The previous conf, configuration.nix, generation and unit files were put back%s' % (
                    ' and the container was started again' if saved['running'] else '')
            except (CliError, OSError, IOError) as again:
                msg += '. Putting the previous state back failed too: %s' % getattr(again, 'msg', again)
        try:
            after = with_unit_files(self.host.refresh(self.name), self.params['systemd_unit_dir'])
            self.result['container'] = public_facts(after)
            if after:
                self.result['generation_after'] = after.get('generation')
        except (CliError, ValueError, OSError, IOError):
            pass
        return CliError(msg, error.cmd, error.rc, error.stdout, error.stderr)

    def _restore(self, saved):
        runner, layout = self.runner, self.layout
        now = self.host.refresh(self.name) or {}
        if now.get('active_state') not in (None, 'inactive'):
            runner.stop(self.name)
        with FileLock(LOCK_PATH):
            if read_file(layout.conf_path(self.name)) != saved['conf_text']:
                write_file_atomically(layout.conf_path(self.name), saved['conf_text'])
        path = layout.configuration_nix(self.name)
        if saved['configuration_nix'] is not None and read_file(path) != saved['configuration_nix']:
            write_file_atomically(path, saved['configuration_nix'])
        profile = layout.system_profile(self.name)
        if saved['generation'] and _profile_target(profile) != saved['system_path']:
            runner.call([self.host.nix_env, '-p', profile, '--switch-generation', str(saved['generation'])],
                        'nix-env --switch-generation %s of %s' % (saved['generation'], profile))
        if (saved['unit_dropin'] or '') != (read_file(dropin_path(self.params['systemd_unit_dir'], self.name)) or ''):
            self._write_dropin(saved['unit_dropin'] or '')
        if saved['auto_start'] != os.path.lexists(wants_link_path(self.params['systemd_unit_dir'], self.name)):
            self._set_link(saved['auto_start'])
        if saved['running']:
            if now.get('active_state') in ('failed', 'activating'):
                runner.reset_failed(self.name)   # the failed start may have used up the start limit
            runner.start(self.name, timeout=self.params['start_timeout'])

    def _really_changed(self, plan, before, after):
        # A forced rebuild that produced the same system changed nothing (facts §1.3.2:
        # update always rebuilds; Nix makes no new generation for the same store path).
        if plan.reasons == ['rebuild requested'] and before and after:
            return before.get('system_path') != after.get('system_path')
        return True

    # desired state -----------------------------------------------------------------------
    def _validate_name(self):
        error = container_name_error(self.name)
        if error:
            raise ValueError('name: %s' % error)
        check_unit_dir(self.params.get('systemd_unit_dir'))

    def _desired(self, current):
        p = self.params
        check_address_pair(p)
        check_run_options(p)
        desired = dict(state=p['state'], restart=p['restart'], recreate=p['recreate'],
                       rollback=p['rollback'], rebuild=p['rebuild'])
        if p['state'] == 'absent':
            desired['conf'] = current['conf'] if current else {}
            # Our link and drop-in go with the container.
            desired.update(auto_start_link=False, unit_dropin='')
            return desired
        properties = unit_properties_from_params(p)
        desired['unit_properties'] = properties
        desired['unit_dropin'] = render_dropin(self.name, properties) if properties is not None else None
        desired['auto_start_link'] = p['auto_start']
        if current is None and p['auto_start'] is None:
            desired['auto_start_link'] = None
        options = options_from_conf(current['conf']) if current else {}
        for key in CONF_OPTION_NAMES:
            if p.get(key) is not None:
                options[key] = p[key]
        if not options.get('private_network'):
            # Host network: the conf carries no network settings (facts §2.3).
            for key in NETWORK_OPTION_NAMES:
                if p.get(key) is None:
                    options[key] = None
        check_bind_sources(p.get('bind_mounts'))
        self._apply_guest_choice(options, desired)
        if p['recreate'] and current:
            keep_current_guest(desired, options, current)
        self._allocate_addresses(options, current)
        conf = conf_from_options(options)
        error = conf_values_error(conf)
        if error:
            raise ValueError(error)
        desired['conf'] = _with_kept_keys(conf, current['conf'] if current else {})
        desired['options'] = options
        self._check_nix(desired)
        return desired

    def _apply_guest_choice(self, options, desired):
        p = self.params
        chosen = [k for k in GUEST_OPTIONS if p[k]] + (['settings'] if p['settings'] else [])
        if chosen and not p['flake']:
            options['flake'] = None
            options['flake_attr'] = None
        if p['flake']:
            options['flake'], options['flake_attr'] = split_flake(p['flake'])
        if p['config'] or p['settings']:
            if nix_nul_error(p['config']):
                raise ValueError('config: %s' % nix_nul_error(p['config']))
            parts = [p['config'].strip('\n')] if p['config'] else []
            if p['settings']:
                try:
                    parts.append(render_settings_body(p['settings']))
                except ValueError as e:
                    raise ValueError('settings: %s' % e)
            desired['extra'] = '\n'.join(parts)
        elif p['config_file']:
            path = p['config_file']
            if not os.path.isabs(path) or not os.path.isfile(path):
                raise ValueError('config_file: %s is not an existing absolute path on the host' % path)
            with open(path, 'rb') as f:
                content = f.read()
            desired['extra'] = 'imports = [ %s ];' % path
            desired['config_file_text'] = content.decode('utf-8', 'replace')
            desired['config_digest'] = hashlib.sha256(content).hexdigest()
        elif p['system_path']:
            if not os.path.isdir(p['system_path']):
                raise ValueError('system_path: %s does not exist on the host' % p['system_path'])
            desired['system_path'] = p['system_path']

    def _allocate_addresses(self, options, current):
        if not options.get('private_network', True) or options.get('host_bridge'):
            return
        if options.get('host_address') or options.get('local_address') or options.get('host_address6'):
            return
        options['host_address'], options['local_address'] = self.host.allocate(exclude=self.name)

    def _check_nix(self, desired):
        current = self.current or {}
        texts = []
        if desired.get('extra') is not None:
            text = render_configuration_nix(self.name, desired['extra'])
            # The text already on the host parsed when it was built: no need to ask again.
            if text != current.get('configuration_nix'):
                texts.append(('config', text))
        if desired.get('config_file_text') is not None and \
                desired.get('config_digest') != current.get('conf', {}).get('NIXFLEET_CONFIG_SHA256'):
            texts.append(('config_file', desired['config_file_text']))
        if not texts:
            return
        nix_instantiate = self.host.bin('nix-instantiate', required=False)
        if not nix_instantiate:
            self.host.warn_once('nix-instantiate was not found on the host: the Nix syntax was not checked')
            return

        def run(argv, data):
            return self.host.run([nix_instantiate] + list(argv[1:]), data=data)

        for what, text in texts:
            if what == 'config':
                # One parse checks the syntax and that the text stays inside the template's braces.
                error = nix_configuration_error(text, desired['extra'], run)
                if error and error.startswith('the text is not the body'):
                    raise ValueError('config: %s' % error)
            else:
                error = nix_parse_error(text, run)
            if error:
                raise ValueError('%s: the Nix text does not parse: %s' % (what, error))

    # diff ---------------------------------------------------------------------------------
    def _diff(self, current, desired, plan):
        return container_diff(self.name, self.layout, self.params['systemd_unit_dir'], current, desired, plan)

    # executing ----------------------------------------------------------------------------
    def _execute(self, plan, current, desired):
        runner = self.runner
        for step in plan.steps:
            if step == 'create':
                self._create(desired)
            elif step == 'destroy':
                # nixos-container destroy stops only an active unit: one retrying a failed start
                # (Restart=on-failure) would start again after it and recreate the root; a failed
                # one would outlive its container.
                unit_state = (current or {}).get('active_state')
                if unit_state not in (None, 'active', 'inactive'):
                    if unit_state != 'failed':
                        runner.stop(self.name)
                    # A stop that ended a start attempt can leave the unit failed.
                    runner.clear_failure(self.name)
                runner.destroy(self.name)
            elif step == 'stop':
                runner.stop(self.name)
            elif step == 'start':
                # Restart=on-failure (facts §5.2) retries a failed start; after five starts in
                # 10 s systemd refuses the next one until the unit's failure is reset.
                if (current or {}).get('active_state') in ('failed', 'activating'):
                    runner.reset_failed(self.name)
                runner.start(self.name, timeout=self.params['start_timeout'])
            elif step == 'write_conf':
                if 'write_configuration' in plan.steps:
                    # a rollback that puts configuration.nix back: the conf records the system
                    # rolled back to, not the one it was built as before
                    self._record_system(desired)
                else:
                    self._write_conf(desired['conf'])
            elif step == 'update':
                self._update(desired)
            elif step == 'set_system':
                runner.set_profile(self.layout.system_profile(self.name), desired['system_path'])
                self._record_system(desired)
            elif step == 'rollback':
                runner.rollback_profile(self.layout.system_profile(self.name))
            elif step == 'write_configuration':
                self._write_configuration(desired)
            elif step == 'reload':
                runner.reload(self.name)
            elif step == 'link':
                self._set_link(desired['auto_start_link'])
            elif step == 'write_dropin':
                self._write_dropin(desired['unit_dropin'])

    def _write_configuration(self, desired):
        """configuration.nix as given, and the conf records the system it was built as."""
        path = self.layout.configuration_nix(self.name)
        write_file_atomically(path, render_configuration_nix(self.name, desired['extra']))
        self._record_system(desired)

    def _set_link(self, wanted):
        """machines.target wants container@NAME.service (facts §5.1, §9), or no longer does."""
        path = wants_link_path(self.params['systemd_unit_dir'], self.name)
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

    def _write_dropin(self, text):
        path = dropin_path(self.params['systemd_unit_dir'], self.name)
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
        self.runner.call([self.host.systemctl, 'daemon-reload'], 'systemctl daemon-reload')

    def _create(self, desired):
        options = desired['options']
        extra = desired.get('extra')
        private = options.get('private_network', True)
        self.runner.create(
            self.name,
            host_address=options.get('host_address') if private else None,
            local_address=options.get('local_address') if private else None,
            bridge=options.get('host_bridge') if private else None,
            port=desired['conf'].get('HOST_PORT') if private else None,
            auto_start=bool(options.get('auto_start')),
            config=extra if not self.params['config_file'] else None,
            config_file=self.params['config_file'],
            flake=options.get('flake'),
            flake_attr=options.get('flake_attr'),
            system_path=desired.get('system_path'),
            nixos_path=self.params['nixos_path'],
        )
        self._record_system(desired)

    def _update(self, desired):
        options = desired['options']
        self.runner.update(
            self.name,
            config=desired.get('extra') if (self.params['config'] or self.params['settings']) else None,
            config_file=self.params['config_file'],
            flake=options.get('flake'),
            flake_attr=options.get('flake_attr'),
            nixos_path=self.params['nixos_path'],
        )
        self._record_system(desired)

    def _record_system(self, desired):
        """Write the desired conf plus what was just built, so drift can be seen later."""
        conf = dict(desired['conf'])
        system = _profile_target(self.layout.system_profile(self.name))
        if system:
            conf['NIXFLEET_SYSTEM'] = system
        if desired.get('config_digest'):
            conf['NIXFLEET_CONFIG_SHA256'] = desired['config_digest']
        self._write_conf(conf)

    def _write_conf(self, values):
        path = self.layout.conf_path(self.name)
        text = render_conf(values)
        with FileLock(LOCK_PATH):
            if read_file(path) != text:
                write_file_atomically(path, text)


def _profile_target(profile):
    try:
        return os.path.realpath(profile) if os.path.lexists(profile) else None
    except OSError:
        return None


def _with_kept_keys(conf, current_conf):
    """Keep keys no option describes (someone else's, and our bookkeeping) as they are."""
    merged = dict(conf)
    for key, value in current_conf.items():
        if key not in merged and key not in KNOWN_KEYS:
            merged[key] = value
    return merged


def public_facts(container):
    """What a user wants to see: the options the conf describes, then the live facts."""
    if not container:
        return {}
    facts = options_from_conf(container.get('conf', {}))
    facts.update((k, v) for k, v in container.items() if k not in ('conf_text', 'configuration_nix'))
    facts['configuration'] = container.get('extra_config')
    return facts
