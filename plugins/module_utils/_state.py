# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read what a NixOS host knows about its containers, once, into plain dicts.

This module_util is PRIVATE to the collection: it may change without notice.

The sources are the ones of facts §2 and §5: the conf file, the container's
configuration.nix, the per-container profile generations and ``systemctl show``.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import re

from ansible_collections.nixfleet.containers.plugins.module_utils._envfile import parse_conf
from ansible_collections.nixfleet.containers.plugins.module_utils._extra_veths import DROPIN_MARK
from ansible_collections.nixfleet.containers.plugins.module_utils._nix import extract_extra_config
from ansible_collections.nixfleet.containers.plugins.module_utils._options import DEFAULT_UNIT_DIR
from ansible_collections.nixfleet.containers.plugins.module_utils._paths import (
    current_generation,
    generation_links,
)


def read_text(path):
    try:
        with open(path, 'r') as f:
            return f.read()
    except (IOError, OSError):
        return None


def is_declarative(conf_path):
    """Declarative confs are symlinks into the read-only store, or store copies no one may
    write (facts §2.7). By the mode, not by access(2): the same answer for root and for the
    inventory's SSH user (DECLARATIVE_SH, the same rule in the hosts' shell).
    """
    if os.path.islink(conf_path):
        return True
    try:
        return not os.stat(conf_path).st_mode & 0o222
    except OSError:
        return False


# is_declarative in POSIX sh, for "$conf": a link, or `ls -l` shows no w in the mode.
DECLARATIVE_SH = '{ [ -L "$conf" ] || case $(ls -ld "$conf") in ??-??-??-*) true ;; *) false ;; esac; }'


def read_container(layout, name):
    """The on-disk facts of one container (no unit state), or None when it does not exist."""
    conf_path = layout.conf_path(name)
    conf_text = read_text(conf_path)
    if conf_text is None:
        return None
    config_path = layout.configuration_nix(name)
    configuration_nix = read_text(config_path)
    profile_dir = layout.profile_dir(name)
    generations = _generations(profile_dir)
    current = current_generation(profile_dir, readlink=os.readlink) if os.path.isdir(profile_dir) else None
    system_path = None
    for number, target in generations:
        if number == current:
            system_path = target
    return dict(
        name=name,
        exists=True,
        kind='declarative' if is_declarative(conf_path) else 'imperative',
        conf_path=conf_path,
        conf_text=conf_text,
        conf=parse_conf(conf_text),
        configuration_nix_path=config_path,
        configuration_nix=configuration_nix,
        extra_config=extract_extra_config(configuration_nix, name) if configuration_nix is not None else None,
        generation=current,
        generations=[dict(number=n, path=t) for n, t in generations],
        system_path=system_path,
    )


def _generations(profile_dir):
    if not os.path.isdir(profile_dir):
        return []
    try:
        return generation_links(profile_dir, listdir=os.listdir, readlink=os.readlink)
    except OSError:
        return []


def with_unit_state(container, unit):
    """Merge ``systemctl show`` properties (facts §1.3 status: up only when active)."""
    active = (unit or {}).get('ActiveState', 'inactive')
    main_pid = (unit or {}).get('MainPID', '0')
    container = dict(container)
    container.update(
        active_state=active,
        sub_state=(unit or {}).get('SubState', ''),
        state='up' if active == 'active' else 'down',
        running=active == 'active',
        main_pid=int(main_pid) if str(main_pid).isdigit() else 0,
    )
    return container


def read_containers(layout, names, show_units):
    """The one read of a host's containers: ``{name: container or None}`` for NAMES.

    Their files, and the state of their units with ONE ``show_units(existing names)`` call
    (``_cli.Runner.show_units``: one ``systemctl list-units`` and one ``systemctl show`` of the
    loaded ones).
    """
    found = dict((name, read_container(layout, name)) for name in names)
    existing = [name for name in names if found[name] is not None]
    units = show_units(existing) if existing else {}
    return dict((name, with_unit_state(found[name], units.get(name)) if found[name] is not None else None)
                for name in names)


# Boot wiring and unit drop-ins (facts §5.1, §9; pitfall P-14). The imperative containers share
# the template container@.service, which has no wantedBy: a container starts at boot only when
# machines.target wants container@NAME.service, i.e. a link in a unit directory's
# machines.target.wants/ (as systemctl enable and extra-container make it). On NixOS
# /etc/systemd/system is the read-only /etc/static tree, so the collection writes into a mutable
# unit directory the host lists in boot.extraSystemdUnitPaths (DEFAULT_UNIT_DIR, as extra-container).
# Where a wants-link may be (info reads them all; declarative autoStart links are in /etc/systemd/system).
KNOWN_UNIT_DIRS = ('/etc/systemd/system.control', '/etc/systemd/system', DEFAULT_UNIT_DIR, '/run/systemd/system')
DROPIN_NAME = '50-nixfleet.conf'


UNIT_PREFIX, UNIT_SUFFIX = 'container@', '.service'


def unit_name(name):
    """The unit of container NAME: every imperative container is an instance of container@.service."""
    return UNIT_PREFIX + name + UNIT_SUFFIX


def container_of_unit(unit):
    """NAME of ``container@NAME.service`` (or of ``container@NAME``); None for another unit."""
    if not unit.startswith(UNIT_PREFIX):
        return None
    name = unit[len(UNIT_PREFIX):]
    return name[:-len(UNIT_SUFFIX)] if name.endswith(UNIT_SUFFIX) else name


def wants_link_path(unit_dir, name):
    return os.path.join(unit_dir, 'machines.target.wants', unit_name(name))


def dropin_path(unit_dir, name):
    return os.path.join(unit_dir, unit_name(name) + '.d', DROPIN_NAME)


def with_unit_files(container, unit_dir=None):
    """Add the boot wiring and our drop-in: ``auto_start`` is the wants-link (not AUTO_START).

    With UNIT_DIR None, every known unit directory is searched (the info module's view).
    """
    if container is None:
        return None
    container = dict(container)
    dirs = [unit_dir] if unit_dir else list(KNOWN_UNIT_DIRS)
    links = [wants_link_path(d, container['name']) for d in dirs]
    found = [p for p in links if os.path.lexists(p)]
    container['auto_start'] = bool(found)
    container['auto_start_link'] = found[0] if found else None
    dropins = [dropin_path(d, container['name']) for d in dirs]
    texts = [(p, read_text(p)) for p in dropins]
    texts = [(p, t) for p, t in texts if t is not None]
    container['unit_dropin_path'] = texts[0][0] if texts else None
    container['unit_dropin'] = texts[0][1] if texts else None
    container['unit_properties'] = parse_dropin(texts[0][1]) if texts else {}
    return container


def parse_dropin(text):
    """``Key=Value`` lines of a drop-in's [Service] section, as a dict (last one wins).

    The extra veths' Exec lines (after their mark) are not unit properties.
    """
    found = {}
    section = None
    for line in (text or '').splitlines():
        line = line.strip()
        if line == DROPIN_MARK:
            break
        if not line or line[0] in '#;':
            continue
        if line.startswith('[') and line.endswith(']'):
            section = line[1:-1]
        elif section == 'Service' and '=' in line:
            key, value = line.split('=', 1)
            found[key.strip()] = value.strip()
    return found


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


def render_dropin(name, properties, veth_lines=()):
    """Our drop-in for container@NAME.service ('' when there is nothing to set).

    VETH_LINES (from ``_extra_veths.unit_lines``) come last, after their mark.
    """
    properties = properties or {}
    if not properties and not veth_lines:
        return ''
    lines = ['# Managed by nixfleet.containers: unit properties of container %s.' % name, '[Service]']
    order = [entry[1] for entry in LIMIT_OPTIONS if entry[1] in properties]
    order += sorted(k for k in properties if k not in order)
    lines += ['%s=%s' % (k, properties[k]) for k in order]
    lines += list(veth_lines)
    return '\n'.join(lines) + '\n'
