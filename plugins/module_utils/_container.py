# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The nixos_container module's work: options -> desired state -> plan -> commands.

This module_util is PRIVATE to the collection: it may change without notice.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import hashlib
import os

from ansible_collections.nixfleet.containers.plugins.module_utils._conf import conf_values_error, KNOWN_KEYS
from ansible_collections.nixfleet.containers.plugins.module_utils._conf_options import (
    conf_from_options,
    GUEST_SOURCE_CONFLICTS,
    options_from_conf,
    unit_dropin_lines,
)
from ansible_collections.nixfleet.containers.plugins.module_utils._extra_veths import DROPIN_MARK
from ansible_collections.nixfleet.containers.plugins.module_utils._host import HostState
from ansible_collections.nixfleet.containers.plugins.module_utils._cli import CliError
from ansible_collections.nixfleet.containers.plugins.module_utils._container_checks import (
    check_address_pair,
    check_bind_sources,
    check_run_options,
    check_unit_dir,
    keep_current_guest,
    snapshot,
)
from ansible_collections.nixfleet.containers.plugins.module_utils._build import guest_extra, shared_configuration, system_key
from ansible_collections.nixfleet.containers.plugins.module_utils._container_diff import container_diff
from ansible_collections.nixfleet.containers.plugins.module_utils._container_steps import (
    bind,
    ContainerOperations,
    restore_steps,
    with_system,
)
from ansible_collections.nixfleet.containers.plugins.module_utils._names import container_name_error
from ansible_collections.nixfleet.containers.plugins.module_utils._nix import (
    nix_configuration_error,
    nix_nul_error,
    nix_parse_error,
    render_configuration_nix,
)
from ansible_collections.nixfleet.containers.plugins.module_utils._options import (
    argument_spec,
    CONF_OPTION_NAMES,
    GUEST_OPTIONS,
    NETWORK_OPTION_NAMES,
    SINGLE,
)
from ansible_collections.nixfleet.containers.plugins.module_utils._plan import plan as make_plan
from ansible_collections.nixfleet.containers.plugins.module_utils._state import (
    render_dropin,
    unit_properties_from_params,
    with_unit_files,
)
from ansible_collections.nixfleet.containers.plugins.module_utils._steps import execute, Plan
# A recreate starts a new profile: there is no earlier generation to roll back to.
CONTAINER_MUTUALLY_EXCLUSIVE = GUEST_SOURCE_CONFLICTS + [('recreate', 'rollback')]


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
        plan = bind(make_plan(current, desired), self.name, self.layout, self.params, current, desired)
        if reasons is not None:
            plan = Plan(plan.action, plan.steps, reasons)
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
        """Refuse a new or changed conf that takes another container's address or host port, and
        a start that needs a host link the host does not have."""
        errors = []
        if self.plan.has('create') or self.plan.has('write_conf'):
            errors += self.host.conflict_errors(self.name, self.desired['conf'])
        if self.plan.has('start'):
            errors += self.host.missing_link_errors(self.name, self.desired['conf'])
        if errors:
            raise ValueError('; '.join(errors))

    def build_request(self):
        """(key, text, nixos_path) of the shared system this plan builds, or None when it builds
        nothing or its guest is not a configuration text (a flake, a given system_path)."""
        plan, desired = self.plan, self.desired
        if not plan or not (plan.has('create') or plan.has('update')) or desired.get('extra') is None:
            return None
        if desired['options'].get('flake') or desired.get('system_path'):
            return None
        text = shared_configuration(desired['extra'])
        nixos_path = self.params['nixos_path']
        return system_key(text, nixos_path, desired.get('config_digest')), text, nixos_path

    def use_system(self, system_path):
        """Create/update from SYSTEM_PATH, built once for this run's containers of the same
        configuration (_build.py), instead of building again."""
        self.plan = with_system(self.plan, system_path, self.name, self.layout, self.desired,
                                bool((self.current or {}).get('running')))

    def apply(self):
        """Carry the plan out (not in check mode). Raises CliError when a command fails.

        A failed command puts an existing container's previous state back (atomic per container).
        """
        plan, current = self.plan, self.current
        if self.module.check_mode or not plan.changes:
            return self.result
        saved = snapshot(current)
        try:
            execute(plan.steps, ContainerOperations(self.runner))
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
        now = self.host.refresh(self.name) or {}
        execute(restore_steps(self.name, self.layout, self.params['systemd_unit_dir'], saved, now,
                              self.params['start_timeout']), ContainerOperations(self.runner))

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
        desired['auto_start_link'] = p['auto_start']
        if current is None and p['auto_start'] is None:
            desired['auto_start_link'] = None
        options = options_from_conf(current['conf']) if current else {}
        for key in CONF_OPTION_NAMES:
            if p.get(key) is not None:
                options[key] = p[key]
        if current is None:
            # nixos-container create always gives a private network; an existing container keeps its own.
            options.setdefault('private_network', True)
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
        desired['unit_dropin'] = self._dropin(properties, desired['conf'], current)
        desired['options'] = options
        self._check_nix(desired)
        return desired

    def _dropin(self, properties, conf, current):
        """The drop-in text: unit properties (None: the current ones) and the lines for what a
        declarative container's own unit does (_conf_options.unit_dropin_lines)."""
        ip = self.host.bin('ip') if conf.get('NIXFLEET_EXTRA_VETHS') else None
        lines = unit_dropin_lines(self.name, conf, ip, self.host.nixos_container)
        had_lines = DROPIN_MARK in ((current or {}).get('unit_dropin') or '')
        if not lines and not had_lines:
            return render_dropin(self.name, properties) if properties is not None else None
        if properties is None:
            properties = (current or {}).get('unit_properties') or {}
        return render_dropin(self.name, properties, lines)

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
            try:
                desired['extra'] = guest_extra(p['config'], p['settings'])
            except ValueError as e:
                raise ValueError('settings: %s' % e)
        elif p['config_file']:
            path = p['config_file']
            if not os.path.isabs(path) or not os.path.isfile(path):
                raise ValueError('config_file: %s is not an existing absolute path on the host' % path)
            with open(path, 'rb') as f:
                content = f.read()
            desired['extra'] = 'imports = [ %s ];' % path
            desired['config_file_text'] = content.decode('utf-8', 'replace')
            desired['config_digest'] = hashlib.sha256(content).hexdigest()
        if p['system_path']:
            if not os.path.isdir(p['system_path']):
                raise ValueError('system_path: %s does not exist on the host' % p['system_path'])
            desired['system_path'] = p['system_path']

    def _allocate_addresses(self, options, current):
        if not options.get('private_network', True) or options.get('host_bridge'):
            return
        if options.get('host_address') or options.get('local_address') or options.get('host_address6'):
            return
        if current and options_from_conf(current['conf']).get('private_network'):
            return  # its own private network without an address (NixOS allows it): kept as it is
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
