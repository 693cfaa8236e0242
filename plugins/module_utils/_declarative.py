# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A declarative container as a NixOS module file, and the imports file that lists them (facts §6).

This module_util is PRIVATE to the collection: it may change without notice.

``<directory>/NAME.nix`` holds ``{ containers.NAME = { ... }; }`` rendered from the options
``nixos_container`` takes (the same validation, the same conf keys once NixOS applies it), and
``<directory>/default.nix`` imports every such file, so the host's configuration.nix needs one
``imports = [ ./containers ];``. Nothing is applied here: ``nixos-rebuild switch`` does that.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import contextlib
import os
import re

from ansible_collections.nixfleet.containers.plugins.module_utils._conf import conf_values_error
from ansible_collections.nixfleet.containers.plugins.module_utils._conf_options import conf_from_options
from ansible_collections.nixfleet.containers.plugins.module_utils._extra_veths import nix_value as nix_extra_veths
from ansible_collections.nixfleet.containers.plugins.module_utils._host import (
    binary_finder,
    read_file,
    write_file_atomically,
    FileLock,
    MODULE_LOCK_PATH,
)
from ansible_collections.nixfleet.containers.plugins.module_utils._names import (
    container_name_error,
    declarative_max_length,
    MAX_MACHINE_NAME_LENGTH,
)
from ansible_collections.nixfleet.containers.plugins.module_utils._nix import (
    attr_name,
    nix_attrset_body_error,
    nix_nul_error,
    nix_parse_error,
    nix_path,
    render_settings_body,
    to_nix,
)
from ansible_collections.nixfleet.containers.plugins.module_utils._options import (
    argument_spec,
    options_of,
    CONF_OPTION_NAMES,
    DECLARATIVE,
    NIX_NAMES,
    SINGLE,
)
from ansible_collections.nixfleet.containers.plugins.module_utils._paths import Layout

# A directory import loads default.nix, so configuration.nix imports the directory itself.
IMPORTS_FILE = 'default.nix'
MANAGED_MARK = '# Managed by nixfleet.containers.nixos_container_declarative'
GUEST_ARGS = '{ config, lib, pkgs, ... }:'
INDENT = 4  # the container's attributes sit inside `{` and `containers.NAME = {`

# Module option -> option of containers.<name> (facts §6.1), in the order they are written.
NIX_OPTIONS = NIX_NAMES
# The options shared with nixos_container, with its exact argument spec.
SHARED_OPTIONS = tuple(o.name for o in options_of(DECLARATIVE) if SINGLE in o.modes)
MUTUALLY_EXCLUSIVE = [('config_file', 'config'), ('config_file', 'settings')]
_FILE_NAME = re.compile(r'^([A-Za-z0-9-]+)\.nix\Z')


def declarative_argument_spec():
    return argument_spec(DECLARATIVE)


# ---------------------------------------------------------------------------------------
# Checking

def input_errors(params, kernel_release=None):
    """Every reason the options cannot become a container definition, each naming its option.

    ``kernel_release``: the host kernel's version (``uname -r``), for NixOS's name-length rule.
    """
    name = params.get('name')
    if kernel_release is None:
        kernel_release = os.uname()[2]
    error = container_name_error(name, declarative_max_length(params.get('private_network') is not False,
                                                              kernel_release))
    if error:
        return ['name: %s' % error]
    errors = []
    if name == IMPORTS_FILE[:-len('.nix')]:
        errors.append('name: "default" is taken by the imports file %s' % IMPORTS_FILE)
    try:
        # The conf nixos_container would write: the same rules for addresses, ports, mounts, flags.
        error = conf_values_error(conf_from_options(dict((k, params.get(k)) for k in CONF_OPTION_NAMES)))
    except ValueError as exc:
        error = str(exc)
    if error:
        errors.append(error)
    if params.get('private_users') == 'yes':
        errors.append('private_users: "yes" is not a value of containers.<name>.privateUsers '
                      '(no, identity, pick or a UID)')
    error = directory_error(params.get('directory'))
    if error:
        errors.append(error)
    if nix_nul_error(params.get('config')):
        errors.append('config: %s' % nix_nul_error(params.get('config')))
    config_file = params.get('config_file')
    if config_file and not (os.path.isabs(config_file) and os.path.isfile(config_file)):
        errors.append('config_file: %s is not an existing absolute path on the host' % config_file)
    try:
        guest_body(params)
    except ValueError as exc:
        errors.append(str(exc))
    return errors


def directory_error(directory):
    """Why DIRECTORY cannot hold the files (checked before any change, so a write cannot fail half-way)."""
    if not os.path.isabs(directory or ''):
        return 'directory: %r must be an absolute path' % directory
    if '\0' in directory:
        return 'directory: %r contains a NUL character' % directory
    existing = directory
    while not os.path.lexists(existing):
        existing = os.path.dirname(existing)
    if os.path.isdir(existing):
        return None
    if existing == directory:
        return 'directory: %s exists and is not a directory' % directory
    return 'directory: %s cannot be created: %s is not a directory' % (directory, existing)


# ---------------------------------------------------------------------------------------
# Rendering

def nix_options(params):
    """``{nixOption: value}`` of the given options, as data for the Nix renderer (in NIX_OPTIONS order)."""
    options = {}
    for option, nix_name in NIX_OPTIONS:
        value = params.get(option)
        if option == 'private_network' and value is None:
            value = True    # as nixos_container creates containers (NixOS's own default is false)
        if value is None:
            continue
        if option == 'forward_ports':
            value = [_forward_port(item) for item in value]
        elif option == 'bind_mounts':
            # NixOS keys bind mounts by mount point (and writes them sorted by it).
            value = dict((item['mount_point'], _bind_mount(item)) for item in value)
        elif option == 'extra_veths':
            value = nix_extra_veths(value)
        elif option == 'private_users' and re.match(r'^[0-9]+\Z', value):
            value = int(value)      # the option is a u32 or one of the words
        options[nix_name] = value
    return options


def _forward_port(item):
    port = dict(protocol=item.get('protocol') or 'tcp', hostPort=item['host_port'])
    if item.get('container_port') is not None:
        port['containerPort'] = item['container_port']
    return port


def _bind_mount(item):
    # hostPath always written, so the conf says host:mount as nixos_container's does.
    host_path = item.get('host_path') or item['mount_point']
    read_only = item.get('read_only')
    return dict(hostPath=host_path, isReadOnly=True if read_only is None else read_only)


def guest_body(params):
    """The body of the guest module: O(config) verbatim, then O(settings), or the config_file import."""
    if params.get('config_file'):
        path = params['config_file']
        try:
            return 'imports = [ %s ];' % nix_path(path)
        except ValueError as exc:
            raise ValueError('config_file: %s' % exc)
    parts = []
    if params.get('config'):
        parts.append(params['config'].strip('\n'))
    if params.get('settings'):
        try:
            parts.append(render_settings_body(params['settings'], indent=INDENT + 2))
        except ValueError as exc:
            raise ValueError('settings: %s' % exc)
    return ('\n' + ' ' * (INDENT + 2)).join(parts)


def render_container(name, options, body):
    """The text of NAME.nix: one module setting ``containers.NAME``."""
    pad = ' ' * INDENT
    lines = [
        '%s: container %s.' % (MANAGED_MARK, name),
        '# Written by Ansible; edits are overwritten. Applied by nixos-rebuild switch.',
        '{',
        '  containers.%s = {' % attr_name(name),
    ]
    lines += ['%s%s = %s;' % (pad, attr_name(key), to_nix(value, INDENT)) for key, value in options.items()]
    if body:
        lines += ['%sconfig = %s {' % (pad, GUEST_ARGS), '%s  %s' % (pad, body), '%s};' % pad]
    else:
        lines.append('%sconfig = %s { };' % (pad, GUEST_ARGS))
    lines += ['  };', '}']
    return '\n'.join(lines) + '\n'


def render_imports(names):
    """The text of the imports file: every container file, sorted."""
    lines = ['%s: the imports file.' % MANAGED_MARK,
             '# Import this directory from configuration.nix: imports = [ ./containers ];',
             '{']
    if names:
        lines += ['  imports = ['] + ['    ./%s.nix' % name for name in sorted(names)] + ['  ];']
    else:
        lines.append('  imports = [ ];')
    lines.append('}')
    return '\n'.join(lines) + '\n'


def is_managed(text):
    return text.startswith(MANAGED_MARK)


def managed_names(directory, read=None, listdir=os.listdir):
    """Names of the container files in DIRECTORY this module wrote (by their first line)."""
    read = read or read_file
    try:
        entries = listdir(directory)
    except OSError:
        return []
    names = []
    for entry in entries:
        match = _FILE_NAME.match(entry)
        if not match or entry == IMPORTS_FILE or container_name_error(match.group(1), MAX_MACHINE_NAME_LENGTH):
            continue
        text = read(os.path.join(directory, entry))
        if text is not None and is_managed(text):
            names.append(match.group(1))
    return sorted(names)


# ---------------------------------------------------------------------------------------
# The module's run

class DeclarativeManager(object):
    """options -> the two files' texts -> (unless check mode) atomic writes."""

    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.name = self.params['name']
        directory = self.params['directory']
        self.path = os.path.join(directory, self.name + '.nix') if isinstance(self.name, str) else None
        self.imports_path = os.path.join(directory, IMPORTS_FILE)
        self.result = dict(changed=False, path=self.path, imports_file=self.imports_path)

    def run(self):
        errors = input_errors(self.params)
        if errors:
            raise ValueError('; '.join(errors))
        with self._locked():
            return self._run()

    @contextlib.contextmanager
    def _locked(self):
        if self.module.check_mode:
            yield
            return
        with FileLock(MODULE_LOCK_PATH):
            yield

    def _run(self):
        p = self.params
        before = read_file(self.path)
        imports_before = read_file(self.imports_path)
        for path, text in ((self.path, before), (self.imports_path, imports_before)):
            if text is not None and not is_managed(text):
                raise ValueError('%s exists and was not written by this module (its first line is not "%s"); '
                                 'move it away or choose another directory' % (path, MANAGED_MARK))
        names = set(managed_names(p['directory']))
        names.discard(self.name)
        if p['state'] == 'present':
            self._refuse_imperative()
            after = render_container(self.name, nix_options(p), guest_body(p))
            names.add(self.name)
        else:
            after = None
        # Removing what is not there creates no imports file.
        imports_after = render_imports(names) if names or imports_before is not None else None
        if after is not None and after != before:
            self._check_nix(after)
        changed = after != before or imports_after != imports_before
        self.result.update(changed=changed, imports=sorted(names), content=after or '')
        if self.module._diff:
            self.result['diff'] = [
                dict(before_header=self.path, after_header=self.path, before=before or '', after=after or ''),
                dict(before_header=self.imports_path, after_header=self.imports_path,
                     before=imports_before or '', after=imports_after or ''),
            ]
        if changed and not self.module.check_mode:
            self.result['changed'] = False      # until a file has moved: a failed write reports what it did
            try:
                self._write(before, after, imports_before, imports_after)
            except OSError as exc:
                raise OSError('directory: writing into %s failed: %s' % (p['directory'], exc))
        return self.result

    def _refuse_imperative(self):
        conf = Layout.detect().conf_path(self.name)
        if os.path.isfile(conf) and not os.path.islink(conf):
            raise ValueError('an imperative container %s exists (its conf %s is a writable file): NixOS would '
                             'not replace it; destroy it (nixfleet.containers.nixos_container state=absent) '
                             'or choose another name' % (self.name, conf))

    def _check_nix(self, text):
        nix_instantiate = binary_finder(self.module)('nix-instantiate')
        if not nix_instantiate:
            self.module.warn('nix-instantiate was not found on the host: the Nix syntax was not checked')
            return

        def run(argv, data):
            return self.module.run_command([nix_instantiate] + list(argv[1:]), data=data)

        body = guest_body(self.params)
        if body and not self.params.get('config_file'):
            # Text that closes the guest module's braces would still parse as a whole.
            error = nix_attrset_body_error(body, run)
            if error:
                raise ValueError('config: %s' % error)
        error = nix_parse_error(text, run)
        if error:
            raise ValueError('config: the rendered %s does not parse: %s' % (self.path, error))
        config_file = self.params.get('config_file')
        if config_file:
            error = nix_parse_error(read_file(config_file) or '', run)
            if error:
                raise ValueError('config_file: %s does not parse: %s' % (config_file, error))

    def _write(self, before, after, imports_before, imports_after):
        directory = self.params['directory']
        if not os.path.isdir(directory):
            os.makedirs(directory, 0o755)
            self.result['changed'] = True
        # The imports file never names a missing file: write the container first, drop it last.
        if after is not None and after != before:
            write_file_atomically(self.path, after)
            self.result['changed'] = True
        if imports_after is not None and imports_after != imports_before:
            write_file_atomically(self.imports_path, imports_after)
            self.result['changed'] = True
        if after is None and before is not None:
            os.unlink(self.path)
            self.result['changed'] = True
