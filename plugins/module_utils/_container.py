# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The nixos_container module's work: options -> desired state -> plan -> commands.

This module_util is PRIVATE to the collection: it may change without notice.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile

from ansible_collections.nixfleet.containers.plugins.module_utils._addressing import (
    allocate_pair,
    collect_used_ipv4,
)
from ansible_collections.nixfleet.containers.plugins.module_utils._cli import CliError, Runner
from ansible_collections.nixfleet.containers.plugins.module_utils._conflicts import conflicts
from ansible_collections.nixfleet.containers.plugins.module_utils._conf import (
    conf_from_options,
    conf_values_error,
    options_from_conf,
    parse_conf,
    render_conf,
    CONF_OPTION_NAMES,
    KNOWN_KEYS,
    NETWORK_OPTION_NAMES,
)
from ansible_collections.nixfleet.containers.plugins.module_utils._names import container_name_error
from ansible_collections.nixfleet.containers.plugins.module_utils._nix import (
    nix_attrset_body_error,
    nix_nul_error,
    nix_parse_error,
    render_configuration_nix,
    render_settings_body,
)
from ansible_collections.nixfleet.containers.plugins.module_utils._paths import LOCK_PATH, Layout
from ansible_collections.nixfleet.containers.plugins.module_utils._plan import plan as make_plan
from ansible_collections.nixfleet.containers.plugins.module_utils._state import (
    DEFAULT_UNIT_DIR,
    dropin_path,
    read_container,
    wants_link_path,
    with_unit_files,
    with_unit_state,
)

# Serialises this collection's mutating runs on one host (allocation, create, conf writes).
# nixos-container create takes LOCK_PATH itself, so we cannot hold that one across create.
MODULE_LOCK_PATH = '/run/lock/nixfleet-containers'
SEARCH_DIRS = ['/run/current-system/sw/bin', '/run/wrappers/bin']
# What a wants-link points to: the template the imperative containers run as (facts §5.1).
TEMPLATE_UNIT = '/etc/systemd/system/container@.service'
GUEST_OPTIONS = ('config', 'config_file', 'flake', 'system_path')
# A recreate starts a new profile: there is no earlier generation to roll back to.
CONTAINER_MUTUALLY_EXCLUSIVE = [GUEST_OPTIONS, ('settings', 'config_file'), ('settings', 'flake'),
                                ('settings', 'system_path'), ('recreate', 'rollback')]


def container_argument_spec():
    return dict(
        name=dict(type='str', required=True),
        state=dict(type='str', default='started', choices=['absent', 'present', 'started', 'stopped']),
        restart=dict(type='bool', default=False),
        recreate=dict(type='bool', default=False),
        rollback=dict(type='bool', default=False),
        rebuild=dict(type='bool', default=False),
        config=dict(type='str'),
        config_file=dict(type='path'),
        flake=dict(type='str'),
        system_path=dict(type='path'),
        settings=dict(type='dict'),
        nixos_path=dict(type='path'),
        auto_start=dict(type='bool'),
        private_network=dict(type='bool', default=True),
        host_address=dict(type='str'),
        local_address=dict(type='str'),
        host_address6=dict(type='str'),
        local_address6=dict(type='str'),
        local_mac_address=dict(type='str'),
        host_bridge=dict(type='str'),
        forward_ports=dict(type='list', elements='dict', options=dict(
            protocol=dict(type='str', default='tcp', choices=['tcp', 'udp']),
            host_port=dict(type='int', required=True),
            container_port=dict(type='int'),
        )),
        bind_mounts=dict(type='list', elements='dict', options=dict(
            mount_point=dict(type='str', required=True),
            host_path=dict(type='str'),
            read_only=dict(type='bool', default=True),
        )),
        ephemeral=dict(type='bool'),
        tmpfs=dict(type='list', elements='str'),
        enable_tun=dict(type='bool'),
        additional_capabilities=dict(type='list', elements='str'),
        extra_flags=dict(type='list', elements='str'),
        private_users=dict(type='str'),
        start_timeout=dict(type='int', default=120),
        nixos_container_bin=dict(type='path'),
        systemd_unit_dir=dict(type='path', default=DEFAULT_UNIT_DIR),
        cpu_quota=dict(type='str'),
        memory_max=dict(type='str'),
        tasks_max=dict(type='str'),
        unit_properties=dict(type='dict'),
    )


# Resource-limit options -> systemd.resource-control(5) properties of container@NAME.service.
LIMIT_OPTIONS = (('cpu_quota', 'CPUQuota', re.compile(r'^[0-9]+(\.[0-9]+)?%$'), 'a percentage like "50%"'),
                 ('memory_max', 'MemoryMax', re.compile(r'^([0-9]+[KMGT]?|[0-9]+(\.[0-9]+)?%|infinity)$'),
                  'bytes with an optional K, M, G or T suffix, a percentage, or "infinity"'),
                 ('tasks_max', 'TasksMax', re.compile(r'^([0-9]+|[0-9]+(\.[0-9]+)?%|infinity)$'),
                  'a number, a percentage, or "infinity"'))
PROPERTY_NAME_RE = re.compile(r'^[A-Z][A-Za-z0-9]*$')


def unit_properties_from_params(p):
    """The [Service] properties the options ask for, or None when none of them is given.

    Raises ValueError naming the option for a bad value (before anything changes).
    """
    if all(p.get(entry[0]) is None for entry in LIMIT_OPTIONS) and p.get('unit_properties') is None:
        return None
    properties = {}
    for option, key, pattern, what in LIMIT_OPTIONS:
        value = p.get(option)
        if value is None:
            continue
        value = str(value).strip()
        if not pattern.match(value):
            raise ValueError('%s: %r is not %s' % (option, value, what))
        properties[key] = value
    for key, value in sorted((p.get('unit_properties') or {}).items()):
        if not PROPERTY_NAME_RE.match(str(key)):
            raise ValueError('unit_properties: %r is not a systemd property name (like MemoryHigh)' % (key,))
        if key in properties:
            raise ValueError('unit_properties: %s is already set by its own option' % key)
        if isinstance(value, bool):
            value = 'yes' if value else 'no'
        value = str(value)
        if '\n' in value or '\r' in value or not value.strip():
            raise ValueError('unit_properties: the value of %s must be one non-empty line' % key)
        properties[key] = value.strip()
    return properties


def render_dropin(name, properties):
    """Our drop-in for container@NAME.service ('' when there is nothing to set)."""
    if not properties:
        return ''
    lines = ['# Managed by nixfleet.containers: unit properties of container %s.' % name, '[Service]']
    order = [entry[1] for entry in LIMIT_OPTIONS if entry[1] in properties]
    order += sorted(k for k in properties if k not in order)
    lines += ['%s=%s' % (k, properties[k]) for k in order]
    return '\n'.join(lines) + '\n'


def split_flake(flake):
    """``REF#ATTR`` -> (REF, ATTR); the CLI's split (facts §1.2 step 6), attr default container."""
    ref, sep, attr = flake.rpartition('#')
    if sep and attr and '"' not in attr:
        return ref, attr
    return flake, 'container'


class FileLock(object):
    """An exclusive flock on a path, as nixos-container create takes it."""

    def __init__(self, path):
        self.path = path
        self.handle = None

    def __enter__(self):
        self.handle = open(self.path, 'a')
        fcntl.flock(self.handle, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        self.handle.close()
        self.handle = None


def write_file_atomically(path, text, mode=0o644):
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix='.%s.' % os.path.basename(path), dir=directory)
    try:
        with os.fdopen(fd, 'w') as f:
            f.write(text)
        os.chmod(tmp, mode)
        os.rename(tmp, path)
    except Exception:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class HostState(object):
    """One host as the managers see it: binaries, layout, containers, used addresses.

    Read once and shared by every container of a run: ``load`` reads the named containers
    with ONE ``systemctl show``; the IPv4 addresses in use (every conf file and the live
    links and routes) are read at most once, and each pair handed out in the run is claimed,
    so containers allocated in one run never collide with each other.
    """

    def __init__(self, module, nixos_container_bin=None):
        self.module = module
        self.layout = Layout.detect()
        self._paths = {}
        self.nixos_container = nixos_container_bin or self.bin('nixos-container')
        self.systemctl = self.bin('systemctl')
        self.nix_env = self.bin('nix-env', required=False) or 'nix-env'
        self.scratch_dir = None
        self._containers = {}
        self._conf_addresses = None
        self._live = None
        self.claimed = set()
        self.planned = {}
        self._live_addresses = None
        self._warned = set()
        self._query = Runner(self.run, systemctl=self.systemctl)

    # plumbing ---------------------------------------------------------------------------
    def run(self, argv, data=None, cwd=None):
        return self.module.run_command(argv, data=data, cwd=cwd)

    def bin(self, name, required=True):
        if name not in self._paths:
            self._paths[name] = self.module.get_bin_path(name, required=False, opt_dirs=SEARCH_DIRS)
        path = self._paths[name]
        if required and not path:
            raise ValueError(_MISSING_BINARY.get(name, '%s was not found on the host') % name)
        return path

    def warn_once(self, text):
        if text not in self._warned:
            self._warned.add(text)
            self.module.warn(text)

    def new_runner(self):
        """A runner of its own (its ``actions`` are one container's), sharing the binaries."""
        return Runner(self.run, nixos_container=self.nixos_container, systemctl=self.systemctl,
                      nix_env=self.nix_env, scratch_dir=self.scratch_dir,
                      journalctl=self.bin('journalctl', required=False))

    @contextlib.contextmanager
    def mutating(self):
        """Outside check mode: hold the collection's host lock and a scratch directory."""
        if self.module.check_mode:
            yield self
            return
        self.scratch_dir = tempfile.mkdtemp(prefix='nixfleet-')
        try:
            with FileLock(MODULE_LOCK_PATH):
                yield self
        finally:
            shutil.rmtree(self.scratch_dir, ignore_errors=True)
            self.scratch_dir = None

    # containers ---------------------------------------------------------------------------
    def load(self, names):
        """Read NAMES' files and their units (ONE systemctl call for all of them)."""
        found = {}
        for name in names:
            found[name] = read_container(self.layout, name)
        existing = [n for n in names if found[n] is not None]
        units = self._query.show_units(existing) if existing else {}
        for name in names:
            self._containers[name] = (with_unit_state(found[name], units.get(name))
                                      if found[name] is not None else None)

    def current(self, name):
        if name not in self._containers:
            self.load([name])
        return self._containers[name]

    def refresh(self, name):
        """Read one container again (after a change)."""
        self._containers.pop(name, None)
        return self.current(name)

    # addresses ----------------------------------------------------------------------------
    def claim(self, *addresses):
        """Reserve addresses for this run (explicit ones of declared containers, allocated pairs)."""
        self.claimed |= collect_used_ipv4([dict(HOST_ADDRESS=a) for a in addresses if a])

    def used_ipv4(self, exclude=None):
        """IPv4 addresses in use: every conf but EXCLUDE's, live links and routes, this run's claims."""
        if self._conf_addresses is None:
            self._conf_addresses = {}
            for name in self.layout.list_names():
                container = self._containers.get(name)
                conf = container['conf'] if container else parse_conf(_read(self.layout.conf_path(name)) or '')
                self._conf_addresses[name] = collect_used_ipv4([conf])
        if self._live is None:
            self._live = collect_used_ipv4([], live=self._live_ipv4())
        used = set(self._live) | self.claimed
        for name, addresses in self._conf_addresses.items():
            if name != exclude:
                used |= addresses
        return used

    def plan_conf(self, name, conf):
        """What NAME's conf will be after this run (None: the container goes)."""
        self.planned[name] = conf

    def conflict_errors(self, name, conf):
        """Conflicts of NAME's CONF with the other containers and the host's addresses.

        Containers apply one after another, so another container counts with its conf of now
        and with its conf after this run (unless it goes).
        """
        now, after = {}, {}
        for other in self.layout.list_names():
            container = self._containers.get(other)
            now[other] = container['conf'] if container else parse_conf(_read(self.layout.conf_path(other)) or '')
        after.update(self.planned)
        for other, planned in self.planned.items():
            if planned is None:
                now.pop(other, None)
        if self._live_addresses is None:
            self._live_addresses = self._live_interface_addresses()
        errors = conflicts(name, conf, now, self._live_addresses)
        return errors + [e for e in conflicts(name, conf, after) if e not in errors]

    def _live_interface_addresses(self):
        ip = self.bin('ip', required=False)
        if not ip:
            return []
        rc, out, err = self.run([ip, '-j', 'addr', 'show'])
        if rc != 0 or not out.strip():
            return []
        return [(link.get('ifname', ''), a['local']) for link in json.loads(out)
                for a in link.get('addr_info', []) if a.get('local')]

    def allocate(self, exclude=None):
        host, local = allocate_pair(self.used_ipv4(exclude))
        self.claimed |= set([host, local])
        return str(host), str(local)

    def _live_ipv4(self):
        ip = self.bin('ip', required=False)
        if not ip:
            return []
        found = []
        rc, out, err = self.run([ip, '-j', '-4', 'addr', 'show'])
        if rc == 0 and out.strip():
            for link in json.loads(out):
                found += [a['local'] for a in link.get('addr_info', []) if a.get('local')]
        rc, out, err = self.run([ip, '-j', '-4', 'route', 'show', 'table', 'all'])
        if rc == 0 and out.strip():
            found += [r['dst'] for r in json.loads(out) if r.get('dst', 'default') not in ('default',)]
        return found


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

    def prepare(self, check_conflicts=True):
        """Read, compute the desired state and the plan; nothing changes. Raises ValueError.

        With CHECK_CONFLICTS false the caller calls :meth:`check_conflicts` once every
        container of the run is planned.
        """
        self._validate_name()
        current = self.current = with_unit_files(self.host.current(self.name), self.params['systemd_unit_dir'])
        desired = self.desired = self._desired(current)
        plan = self.plan = make_plan(current, desired)
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
        """Carry the plan out (not in check mode). Raises CliError when a command fails."""
        plan, current, desired = self.plan, self.current, self.desired
        if self.module.check_mode or not plan.changes:
            return self.result
        saved = _snapshot(current)
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
            if _read(layout.conf_path(self.name)) != saved['conf_text']:
                write_file_atomically(layout.conf_path(self.name), saved['conf_text'])
        path = layout.configuration_nix(self.name)
        if saved['configuration_nix'] is not None and _read(path) != saved['configuration_nix']:
            write_file_atomically(path, saved['configuration_nix'])
        profile = layout.system_profile(self.name)
        if saved['generation'] and _profile_target(profile) != saved['system_path']:
            runner.call([self.host.nix_env, '-p', profile, '--switch-generation', str(saved['generation'])],
                        'nix-env --switch-generation %s of %s' % (saved['generation'], profile))
        if (saved['unit_dropin'] or '') != (_read(dropin_path(self.params['systemd_unit_dir'], self.name)) or ''):
            self._write_dropin(saved['unit_dropin'] or '')
        if saved['auto_start'] != os.path.lexists(wants_link_path(self.params['systemd_unit_dir'], self.name)):
            self._set_link(saved['auto_start'])
        if saved['running']:
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
        unit_dir = self.params.get('systemd_unit_dir')
        if unit_dir is not None and (not os.path.isabs(unit_dir) or '..' in unit_dir.split('/')):
            raise ValueError('systemd_unit_dir: %r must be an absolute path without ".."' % unit_dir)

    def _desired(self, current):
        p = self.params
        _check_address_pair(p)
        if p['restart'] and p['state'] != 'started':
            raise ValueError('restart: only with state=started (state is %s)' % p['state'])
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
        _check_bind_sources(p.get('bind_mounts'))
        self._apply_guest_choice(options, desired)
        if p['recreate'] and current:
            _keep_current_guest(desired, options, current)
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
            error = nix_parse_error(text, run)
            if error:
                raise ValueError('%s: the Nix text does not parse: %s' % (what, error))
            if what == 'config':
                error = nix_attrset_body_error(desired['extra'], run)
                if error:
                    raise ValueError('config: %s' % error)

    # diff ---------------------------------------------------------------------------------
    def _diff(self, current, desired, plan):
        before_conf = current['conf_text'] if current else ''
        before_nix = (current or {}).get('configuration_nix') or ''
        if plan.action == 'destroy' or desired['state'] == 'absent':
            after_conf, after_nix = '', ''
        else:
            after_conf = render_conf(_without_new_meta(desired['conf'], current))
            extra = desired.get('extra')
            if extra is None and current is None and not desired.get('system_path') \
                    and not desired['conf'].get('FLAKE'):
                extra = ''
            after_nix = render_configuration_nix(self.name, extra) if extra is not None else before_nix
        conf_path = self.layout.conf_path(self.name)
        nix_path = self.layout.configuration_nix(self.name)
        unit_files = [d for d in self._unit_files_diff(current, desired) if d['before'] != d['after']]
        return [
            dict(before_header=conf_path, after_header=conf_path, before=before_conf, after=after_conf),
            dict(before_header=nix_path, after_header=nix_path, before=before_nix, after=after_nix),
            dict(before_header='run state', after_header='run state',
                 before=_run_state(current) + '\n', after=_run_state_after(current, desired, plan) + '\n'),
        ] + _generation_diff(current, plan, self.layout.system_profile(self.name)) + unit_files

    def _unit_files_diff(self, current, desired):
        current = current or {}
        link_after = desired.get('auto_start_link')
        if link_after is None:
            link_after = bool(current.get('auto_start'))
        return [
            dict(before_header='auto_start (machines.target wants-link)',
                 after_header=wants_link_path(self.params['systemd_unit_dir'], self.name),
                 before='%s\n' % bool(current.get('auto_start')), after='%s\n' % link_after),
            dict(before_header=current.get('unit_dropin_path') or 'unit drop-in',
                 after_header=dropin_path(self.params['systemd_unit_dir'], self.name),
                 before=current.get('unit_dropin') or '',
                 after=(current.get('unit_dropin') or '') if desired.get('unit_dropin') is None
                 else desired['unit_dropin']),
        ]

    # executing ----------------------------------------------------------------------------
    def _execute(self, plan, current, desired):
        runner = self.runner
        for step in plan.steps:
            if step == 'create':
                self._create(desired)
            elif step == 'destroy':
                runner.destroy(self.name)
            elif step == 'stop':
                runner.stop(self.name)
            elif step == 'start':
                runner.start(self.name, timeout=self.params['start_timeout'])
            elif step == 'write_conf':
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
        desired['conf'] = conf
        self._write_conf(conf)

    def _write_conf(self, values):
        path = self.layout.conf_path(self.name)
        text = render_conf(values)
        with FileLock(LOCK_PATH):
            if _read(path) != text:
                write_file_atomically(path, text)


_MISSING_BINARY = {
    'nixos-container': '%s was not found on the host. On NixOS 25.11 and newer it is only installed '
                       'with boot.enableContainers = true; set it in the host configuration '
                       '(or give nixos_container_bin)',
    'systemctl': '%s was not found on the host: is this a systemd (NixOS) host?',
}


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except (IOError, OSError):
        return None


def _profile_target(profile):
    try:
        return os.path.realpath(profile) if os.path.lexists(profile) else None
    except OSError:
        return None


def _check_address_pair(p):
    """Without a bridge both ends of ve-NAME come from the pair: give both (a bridge needs only the local one)."""
    if p.get('host_bridge') or bool(p.get('host_address')) == bool(p.get('local_address')):
        return
    given, missing = ('host_address', 'local_address') if p.get('host_address') else ('local_address', 'host_address')
    raise ValueError('parameters are required together: host_address, local_address (unless host_bridge is set); '
                     '%s is given without %s' % (given, missing))


def _check_bind_sources(bind_mounts):
    """nspawn cannot bind what the host does not have: refuse it before the unit fails."""
    for item in bind_mounts or []:
        source = item.get('host_path') or item.get('mount_point')
        if isinstance(source, str) and os.path.isabs(source) and not os.path.exists(source):
            raise ValueError('bind_mounts: host_path %s does not exist on the host' % source)
        if source == '/' and item.get('read_only') is False:
            raise ValueError('bind_mounts: a read-write bind of the host\'s / gives the container the whole '
                             'host; bind a narrower host_path, or read_only: true')


def _snapshot(current):
    """What a failed apply puts back (None for a new or a declarative container)."""
    if not current or current.get('kind') == 'declarative':
        return None
    return dict((key, current.get(key)) for key in (
        'conf_text', 'configuration_nix', 'generation', 'system_path', 'unit_dropin', 'auto_start', 'running'))


def _keep_current_guest(desired, options, current):
    """A recreate that names no guest rebuilds the one the container has now.

    The flake is in the conf (``options`` already carries it); a configuration.nix in the
    nixos-container template gives its text back; otherwise the system the profile points to.
    """
    if desired.get('extra') is not None or desired.get('system_path') or options.get('flake'):
        return
    if current.get('extra_config') is not None:
        desired['extra'] = current['extra_config']
    elif current.get('system_path'):
        desired['system_path'] = current['system_path']


def _with_kept_keys(conf, current_conf):
    """Keep keys no option describes (someone else's, and our bookkeeping) as they are."""
    merged = dict(conf)
    for key, value in current_conf.items():
        if key not in merged and key not in KNOWN_KEYS:
            merged[key] = value
    return merged


def _without_new_meta(conf, current):
    shown = dict(conf)
    old = (current or {}).get('conf', {})
    for key in ('NIXFLEET_SYSTEM', 'NIXFLEET_CONFIG_SHA256'):
        if key in old:
            shown[key] = old[key]
        else:
            shown.pop(key, None)
    return shown


def _generation_diff(current, plan, path):
    """A rollback changes the profile: show which generation becomes the current one."""
    if 'rollback' not in plan.steps:
        return []
    below = [g for g in current['generations'] if g['number'] < current['generation']]
    target = max(below, key=lambda g: g['number'])
    return [dict(before_header=path, after_header=path,
                 before='generation %s: %s\n' % (current['generation'], current.get('system_path')),
                 after='generation %s: %s\n' % (target['number'], target['path']))]


def _run_state(container):
    if container is None:
        return 'absent'
    return 'running' if container.get('running') else 'stopped'


def _run_state_after(current, desired, plan):
    if desired['state'] == 'absent':
        return 'absent'
    if 'start' in plan.steps:
        return 'running'
    if 'stop' in plan.steps:
        return 'stopped'
    return _run_state(current) if current else 'stopped'


def public_facts(container):
    """What a user wants to see: the options the conf describes, then the live facts."""
    if not container:
        return {}
    facts = options_from_conf(container.get('conf', {}))
    facts.update((k, v) for k, v in container.items() if k not in ('conf_text', 'configuration_nix'))
    facts['configuration'] = container.get('extra_config')
    return facts
