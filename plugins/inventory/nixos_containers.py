# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
name: nixos_containers
short_description: NixOS containers as inventory hosts
version_added: 0.2.0
author:
  - nixfleet.containers developers (@nixfleet)
description:
  - Makes every NixOS container of a fleet an inventory host, so plays, C(serial) batches and
    C(max_fail_percentage) work per container across hosts.
  - Containers come from a fleet spec (O(fleet), which also gives tags, a service group and
    variables) and, with O(discover=true), from the hosts themselves, asked over SSH for their
    container conf files and unit states (C(/etc/nixos-containers/*.conf) or the pre-22.05
    C(/etc/containers), and C(systemctl show container@NAME)). Only the hosts' POSIX shell,
    C(cat), C(ls) and C(systemctl) are used; nothing is changed on them.
  - The hosts to ask are those of O(host_group) (or named in O(fleet)) that an inventory source
    read B(before) this one defines; their C(ansible_host), C(ansible_port), C(ansible_user),
    C(ansible_ssh_private_key_file), C(ansible_ssh_common_args) and C(ansible_ssh_extra_args)
    say how to reach them. List that source first (for example two C(-i) options, or a directory).
  - Each container is in the groups C(nixos_containers), C(nixos_host_<host>),
    C(nixos_tag_<tag>) for each tag, C(nixos_service_<service group>) and C(nixos_state_<state>)
    (V(up), V(down), V(absent) when the fleet declares it but its host does not have it, or
    V(unknown) when its host was not asked or could not be reached).
  - With O(connection=nixos_container) (the default) a container is reached through its host with
    the P(nixfleet.containers.nixos_container#connection) connection plugin, which needs no sshd in
    the container; with O(connection=ssh) it is reached by SSH at its own address.
  - Every value read from a host or from the fleet spec is marked unsafe, so a container name or
    a conf value can never be evaluated as a template.
extends_documentation_fragment:
  - ansible.builtin.constructed
  - ansible.builtin.inventory_cache
options:
  plugin:
    description: Marks the file as a source for this plugin.
    type: str
    required: true
    choices: [nixfleet.containers.nixos_containers]
  fleet:
    description:
      - The fleet spec. Keys are the inventory names of the hosts; each value is a list of
        containers, each a container name or a dictionary with C(name) and optional C(tags)
        (list of strings), C(service_group) (string) and C(vars) (a dictionary of host variables).
    type: dict
    default: {}
  spec_variable:
    description:
      - The host variable that holds a host's fleet spec, the list the roles and
        M(nixfleet.containers.fleet_validate) read (C(docs/fleet-spec.md)). For each host of
        O(host_group) (and each host named in O(fleet)), its containers' C(name), C(tags) and
        C(service_group) are added as if given in O(fleet); O(fleet) wins for a container it names.
      - The variable is read as an earlier inventory source set it (host and group variables, not
        templated); entries that are not dictionaries with a C(name) are skipped with a warning.
      - Set to an empty string to ignore it.
    type: str
    default: containers
  discover:
    description:
      - Ask the hosts which containers they have and in which state.
      - Containers a host has that the fleet does not declare are added too (without tags).
    type: bool
    default: true
  host_group:
    description:
      - The inventory group whose hosts are asked (with O(discover=true)), in addition to the hosts
        named in O(fleet).
    type: str
    default: nixos_hosts
  connection:
    description:
      - How plays reach a container.
      - V(nixos_container) sets C(ansible_connection=nixfleet.containers.nixos_container),
        C(nixos_container_name) and the host's connection variables (see O(host_vars)).
      - V(ssh) sets C(ansible_host) to the container's own IPv4 address (C(LOCAL_ADDRESS)).
    type: str
    choices: [nixos_container, ssh]
    default: nixos_container
  host_vars:
    description:
      - The variables of a host that are copied to its containers with O(connection=nixos_container),
        so that the wrapped host connection reaches the host.
    type: list
    elements: str
    default: [ansible_host, ansible_port, ansible_user, ansible_ssh_private_key_file,
              ansible_ssh_common_args, ansible_ssh_extra_args, ansible_ssh_executable]
  hostname_format:
    description:
      - The inventory name of a container, from C({name}) (the container) and C({host}) (the
        inventory name of its host). Container names are only unique per host.
    type: str
    default: '{name}.{host}'
  timeout:
    description: Seconds to wait for one host's answer.
    type: int
    default: 20
'''

EXAMPLES = r'''
# inventory/20-containers.nixos_containers.yml (inventory/10-hosts.yml defines group nixos_hosts)
plugin: nixfleet.containers.nixos_containers
fleet:
  host1:
    - name: web
      tags: [frontend]
      service_group: web
    - db
  host2:
    - name: web
      service_group: web
keyed_groups:
  - key: nixos_container_kind
    prefix: kind
compose:
  ansible_python_interpreter: "'/run/current-system/sw/bin/python3'"
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: /tmp/nixos_containers_cache
'''

import shlex
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor

from ansible.errors import AnsibleParserError
from ansible.inventory.helpers import get_group_vars
from ansible.module_utils.common.text.converters import to_native, to_text
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable
from ansible.utils.display import Display

from ansible_collections.nixfleet.containers.plugins.module_utils._conf_options import options_from_conf
from ansible_collections.nixfleet.containers.plugins.module_utils._envfile import parse_conf
from ansible_collections.nixfleet.containers.plugins.module_utils._paths import (
    CONF_SUFFIX,
    LEGACY_CONF_DIR,
    MODERN_CONF_DIR,
    PODMAN_CONF_FILES,
)
from ansible_collections.nixfleet.containers.plugins.module_utils._state import DECLARATIVE_SH, unit_name

try:
    from ansible.utils.unsafe_proxy import make_unsafe
except ImportError:             # ansible-core < 2.16 has only wrap_var
    from ansible.utils.unsafe_proxy import wrap_var as make_unsafe

display = Display()

CONNECTION_PLUGIN = 'nixfleet.containers.nixos_container'
ALL_GROUP = 'nixos_containers'
STATES = ('up', 'down', 'absent', 'unknown')

# Run by the host's shell: each conf file of the layout in use (facts §2.1: the modern
# directory when it exists), its unit's ActiveState, and whether it is declarative (the rule
# of _state.is_declarative). "$1" is a per-run random marker, so no conf text can
# forge a record boundary.
_DISCOVER = r'''
mark=$1
dir=%(modern)s
[ -d "$dir" ] || dir=%(legacy)s
for conf in "$dir"/*%(suffix)s; do
  [ -f "$conf" ] || continue
  name=${conf##*/}; name=${name%%%(suffix)s}
  kind=imperative; %(declarative)s && kind=declarative
  active=$(systemctl show "%(unit)s" -p ActiveState --value 2>/dev/null)
  printf '%%s %%s %%s %%s %%s\n' "$mark" "$dir" "$name" "$kind" "${active:-unknown}"
  cat "$conf"
  printf '\n'
done
printf '%%s end\n' "$mark"
''' % dict(modern=MODERN_CONF_DIR, legacy=LEGACY_CONF_DIR, suffix=CONF_SUFFIX,
           declarative=DECLARATIVE_SH, unit=unit_name('$name'))


def parse_discovery(text, mark):
    """``{name: record}`` from the discovery script's output; None when it did not finish."""
    containers, current = {}, None
    finished = False
    for line in text.splitlines(True):
        words = line.rstrip('\n').split(' ')
        if words[0] == mark:
            if words[1:] == ['end']:
                finished = True
                break
            if len(words) != 5:
                return None
            conf_dir, name, kind, active = words[1:]
            if conf_dir == LEGACY_CONF_DIR and name + CONF_SUFFIX in PODMAN_CONF_FILES:
                current = None
                continue
            current = containers[name] = dict(name=name, kind=kind, active_state=active, conf_text='')
        elif current is not None:
            current['conf_text'] += line
    if not finished:
        return None
    for record in containers.values():
        record['conf'] = parse_conf(record.pop('conf_text'))
        record['state'] = 'up' if record['active_state'] == 'active' else 'down'
    return containers


def _fleet_entries(fleet):
    """``{host: {name: spec}}`` from the fleet option, checked."""
    if not isinstance(fleet, dict):
        raise AnsibleParserError('nixos_containers: fleet must be a dictionary of hosts')
    result = {}
    for host, containers in fleet.items():
        if not isinstance(containers, list):
            raise AnsibleParserError('nixos_containers: fleet.%s must be a list of containers' % host)
        entries = result.setdefault(to_text(host), {})
        for item in containers:
            spec = dict(name=item) if isinstance(item, str) else item
            if not isinstance(spec, dict) or not isinstance(spec.get('name'), str) or not spec['name']:
                raise AnsibleParserError('nixos_containers: each container of fleet.%s needs a name: %r'
                                         % (host, item))
            unknown = set(spec) - set(['name', 'tags', 'service_group', 'vars'])
            if unknown:
                raise AnsibleParserError('nixos_containers: fleet.%s.%s: unknown keys %s (known: name, '
                                         'tags, service_group, vars)' % (host, spec['name'], ', '.join(sorted(unknown))))
            tags = spec.get('tags') or []
            if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                raise AnsibleParserError('nixos_containers: fleet.%s.%s.tags must be a list of strings'
                                         % (host, spec['name']))
            if not isinstance(spec.get('vars') or {}, dict):
                raise AnsibleParserError('nixos_containers: fleet.%s.%s.vars must be a dictionary'
                                         % (host, spec['name']))
            entries[spec['name']] = dict(tags=tags, service_group=spec.get('service_group'),
                                         vars=spec.get('vars') or {})
    return result


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):

    NAME = 'nixfleet.containers.nixos_containers'

    def verify_file(self, path):
        return super(InventoryModule, self).verify_file(path) and \
            path.endswith(('nixos_containers.yml', 'nixos_containers.yaml'))

    def parse(self, inventory, loader, path, cache=True):
        super(InventoryModule, self).parse(inventory, loader, path, cache)
        self._read_config_data(path)
        fleet = _fleet_entries(self.get_option('fleet'))
        hosts = self._hosts_to_ask(fleet)
        self._add_spec_variable(fleet, hosts)
        connection_vars = dict((host, self._host_connection_vars(host)) for host in hosts)

        discovered = {}
        if self.get_option('discover') and hosts:
            cache_key = self.get_cache_key(path)
            use_cache = self.get_option('cache') and cache
            update_cache = self.get_option('cache') and not cache
            if use_cache:
                try:
                    discovered = self._cache[cache_key]
                except KeyError:
                    update_cache = True
            if not discovered or update_cache:
                discovered = self._discover_all(hosts, connection_vars)
            if update_cache:
                self._cache[cache_key] = discovered
        self._populate(fleet, discovered, connection_vars)

    # -- asking the hosts -----------------------------------------------------------------

    def _hosts_to_ask(self, fleet):
        names = []
        group = self.inventory.groups.get(self.get_option('host_group'))
        if group is not None:
            names.extend(host.name for host in group.get_hosts())
        names.extend(host for host in fleet if host not in names)
        known = [name for name in names if self.inventory.get_host(name) is not None]
        for name in names:
            if name not in known:
                display.warning('nixos_containers: host %s is not defined by an earlier inventory source; '
                                'its containers are not discovered' % name)
        return known

    def _host_variables(self, name):
        host = self.inventory.get_host(name)
        variables = get_group_vars(host.get_groups())
        variables.update(host.get_vars())
        return variables

    def _host_connection_vars(self, name):
        variables = self._host_variables(name)
        return dict((key, variables[key]) for key in self.get_option('host_vars') if key in variables)

    def _add_spec_variable(self, fleet, hosts):
        """Containers of each host's fleet spec variable, where O(fleet) does not name them."""
        variable = self.get_option('spec_variable')
        if not variable:
            return
        for host in hosts:
            spec = self._host_variables(host).get(variable)
            if spec is None:
                continue
            if not isinstance(spec, list):
                display.warning('nixos_containers: %s of host %s is not a list; ignored' % (variable, host))
                continue
            entries = fleet.setdefault(to_text(host), {})
            for index, item in enumerate(spec):
                if not isinstance(item, dict) or not isinstance(item.get('name'), str) or not item['name']:
                    display.warning('nixos_containers: %s[%d] of host %s has no name; skipped' % (variable, index, host))
                    continue
                if item['name'] in entries:
                    continue
                tags = item.get('tags') or []
                if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                    tags = []
                group = item.get('service_group')
                entries[item['name']] = dict(tags=tags, service_group=group if isinstance(group, str) else None,
                                             vars={})

    def _discover_all(self, hosts, connection_vars):
        with ThreadPoolExecutor(max_workers=min(16, len(hosts))) as pool:
            answers = pool.map(lambda host: self._discover(host, connection_vars[host]), hosts)
            return dict((host, answer) for host, answer in zip(hosts, answers) if answer is not None)

    def _discover(self, host, variables):
        """This host's containers, or None (with a warning) when it could not be asked."""
        mark = 'nixfleet-%s' % uuid.uuid4().hex
        argv = [to_text(variables.get('ansible_ssh_executable') or 'ssh'), '-o', 'BatchMode=yes',
                '-o', 'ConnectTimeout=%d' % self.get_option('timeout')]
        if variables.get('ansible_port'):
            argv += ['-p', to_text(variables['ansible_port'])]
        if variables.get('ansible_user'):
            argv += ['-l', to_text(variables['ansible_user'])]
        if variables.get('ansible_ssh_private_key_file'):
            argv += ['-i', to_text(variables['ansible_ssh_private_key_file'])]
        for key in ('ansible_ssh_common_args', 'ansible_ssh_extra_args'):
            argv += shlex.split(to_text(variables.get(key) or ''))
        remote = ' '.join(shlex.quote(word) for word in ['/bin/sh', '-c', _DISCOVER, 'discover', mark])
        argv += ['--', to_text(variables.get('ansible_host') or host), remote]
        try:
            proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                                  timeout=self.get_option('timeout') + 10, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            display.warning('nixos_containers: could not ask host %s: %s' % (host, to_native(exc)))
            return None
        containers = parse_discovery(to_text(proc.stdout, errors='surrogate_or_replace'), mark)
        if proc.returncode != 0 or containers is None:
            display.warning('nixos_containers: could not ask host %s (exit %d): %s' % (
                host, proc.returncode, to_native(proc.stderr).strip()))
            return None
        return containers

    # -- the inventory --------------------------------------------------------------------

    def _populate(self, fleet, discovered, connection_vars):
        self.inventory.add_group(ALL_GROUP)
        hosts = list(fleet) + [host for host in discovered if host not in fleet]
        for host in hosts:
            declared = fleet.get(host, {})
            found = discovered.get(host)
            names = list(declared) + [name for name in (found or {}) if name not in declared]
            for name in names:
                record = (found or {}).get(name)
                if record is None:
                    state = 'absent' if found is not None else 'unknown'
                else:
                    state = record['state']
                self._add_container(host, name, state, record, declared.get(name),
                                    connection_vars.get(host, {}))

    def _add_container(self, host, name, state, record, spec, host_vars):
        inventory_name = self.get_option('hostname_format').format(name=name, host=host)
        spec = spec or dict(tags=[], service_group=None, vars={})
        variables = dict(spec['vars'])
        variables.update(
            nixos_container_name=name, nixos_container_host=host, nixos_container_state=state,
            nixos_container_tags=list(spec['tags']), nixos_container_service_group=spec['service_group'])
        if record is not None:
            options = options_from_conf(record['conf'])
            variables.update(
                nixos_container_kind=record['kind'], nixos_container_active_state=record['active_state'],
                nixos_container_conf=record['conf'],
                nixos_container_local_address=_address(options.get('local_address')),
                nixos_container_host_address=_address(options.get('host_address')),
                nixos_container_private_network=options.get('private_network'))
        # Everything read from a host or the fleet spec is unsafe (never templated).
        variables = dict((key, make_unsafe(value)) for key, value in variables.items())
        if self.get_option('connection') == 'nixos_container':
            # The host's own connection variables, as its inventory source gave them (they
            # may be templates, e.g. a key path built from a variable: not marked unsafe).
            variables.update(host_vars)
            variables['ansible_connection'] = CONNECTION_PLUGIN
            variables.setdefault('ansible_host', host)
        elif variables.get('nixos_container_local_address'):
            variables['ansible_host'] = variables['nixos_container_local_address']

        self.inventory.add_host(inventory_name, group=ALL_GROUP)
        for key, value in variables.items():
            self.inventory.set_variable(inventory_name, key, value)
        groups = ['nixos_host_%s' % host, 'nixos_state_%s' % state]
        groups += ['nixos_tag_%s' % tag for tag in spec['tags']]
        if spec['service_group']:
            groups.append('nixos_service_%s' % spec['service_group'])
        for group in groups:
            group = self._sanitize_group_name(group)
            self.inventory.add_group(group)
            self.inventory.add_child(group, inventory_name)

        strict = self.get_option('strict')
        hostvars = self.inventory.get_host(inventory_name).get_vars()
        self._set_composite_vars(self.get_option('compose'), hostvars, inventory_name, strict=strict)
        self._add_host_to_composed_groups(self.get_option('groups'), hostvars, inventory_name, strict=strict)
        self._add_host_to_keyed_groups(self.get_option('keyed_groups'), hostvars, inventory_name, strict=strict)


def _address(value):
    """The address part of ``a.b.c.d[/prefix]``, or None."""
    return value.split('/')[0] if value else None
