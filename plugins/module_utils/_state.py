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

from ansible_collections.nixfleet.containers.plugins.module_utils._conf import parse_conf
from ansible_collections.nixfleet.containers.plugins.module_utils._nix import extract_extra_config
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
    """Declarative confs are symlinks into the read-only store (facts §2.7)."""
    return os.path.islink(conf_path) or not os.access(conf_path, os.W_OK)


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
