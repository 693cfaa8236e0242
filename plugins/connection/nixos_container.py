# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
name: nixos_container
short_description: Run tasks inside a NixOS container through its host
version_added: 0.2.0
author:
  - nixfleet.containers developers (@nixfleet)
description:
  - Runs Ansible's commands inside a running NixOS container (systemd-nspawn) by way of the
    container's host. The container needs no sshd, no key and no network of its own.
  - The plugin wraps a connection to the host (V(ansible.builtin.ssh) unless O(host_connection)
    says otherwise). That connection is configured by the usual variables of the container's
    inventory entry, so C(ansible_host), C(ansible_user), C(ansible_ssh_private_key_file),
    C(ansible_ssh_common_args), ... describe how to reach the B(host). The inventory plugin
    P(nixfleet.containers.nixos_containers#inventory) sets them.
  - Every command runs on the host as C(nsenter --all --target LEADER) into all namespaces of the
    container's init (its leader PID, from C(machinectl show NAME -p Leader --value)), with a clean
    environment (O(container_path), C(HOME=/root), C(LANG=C.UTF-8)) and the container's C(/bin/sh),
    as root in the container. This is what C(nixos-container run) and C(root-login) do, without
    their login shell and without a pty, so stdin is free and pipelining works.
  - Files are copied by streaming them through the host connection into the container's own mount
    namespace (C(cat) run inside the container), never by writing below the container's root
    directory on the host. A running container has its own mounts (a memory file system on C(/tmp),
    bind mounts, a throw-away copy of its root), and its root directory is controlled by the container, so a
    host-side path could follow a symbolic link planted by the guest to a file of the host.
    Files up to O(stream_limit) bytes go in one round trip on the command's stdin; larger files,
    and every fetch, are staged in a private temporary directory on the host (C(mktemp -d)) and
    moved with the host connection's own file transfer.
  - A container that is not running, or does not exist, makes the container B(unreachable) (not
    failed), with a message that says which.
notes:
  - The host connection must log in as root (or a user allowed to run C(nsenter) into the
    container's namespaces), because C(nsenter) needs it; become applies inside the container.
  - Tasks run as root inside the container. Use become (V(su) or V(sudo) inside the container) to
    run as another user.
  - Python modules need a Python interpreter inside the container (C(ansible_python_interpreter),
    for example a store path of the container's system). The V(ansible.builtin.raw) module needs
    only C(/bin/sh).
  - The command joins the container's namespaces but stays in the host session's cgroup, as with
    C(nixos-container run).
  - Needs util-linux 2.35 or newer on the host (C(nsenter --all)) and C(machinectl).
options:
  container_name:
    description:
      - The name of the container on its host (C(nixos-container list)).
      - Defaults to the inventory name of the container.
    type: str
    vars:
      - name: inventory_hostname
      - name: nixos_container_name
      - name: ansible_nixos_container_name
  host_connection:
    description:
      - The connection plugin that reaches the container's host, for example V(ansible.builtin.ssh),
        V(ansible.builtin.paramiko_ssh), or V(ansible.builtin.local) when the controller is the host.
      - It is configured by the same variables as a direct connection to the host would be.
    type: str
    default: ansible.builtin.ssh
    vars:
      - name: ansible_nixos_container_host_connection
  container_path:
    description:
      - E(PATH) inside the container. The default is the system PATH of a NixOS system.
    type: str
    default: "/run/wrappers/bin:/root/.nix-profile/bin:/nix/profile/bin:/root/.local/state/nix/profile/bin:\
      /etc/profiles/per-user/root/bin:/nix/var/nix/profiles/default/bin:/run/current-system/sw/bin:/usr/bin:/bin"
    vars:
      - name: ansible_nixos_container_path
  stream_limit:
    description:
      - Files up to this size (bytes) are sent on the stdin of one command; larger files are staged
        on the host and sent with the host connection's file transfer.
    type: int
    default: 4194304
    vars:
      - name: ansible_nixos_container_stream_limit
  pipelining:
    description:
      - Pipeline modules into the container's Python over stdin instead of copying them first.
    type: bool
    default: false
    env:
      - name: ANSIBLE_PIPELINING
    ini:
      - section: defaults
        key: pipelining
      - section: connection
        key: pipelining
      - section: ssh_connection
        key: pipelining
    vars:
      - name: ansible_pipelining
      - name: ansible_nixos_container_pipelining
'''

EXAMPLES = r'''
# An inventory: the container web on host1 (10.0.0.11), reached as root over SSH.
# all:
#   hosts:
#     web:
#       ansible_connection: nixfleet.containers.nixos_container
#       ansible_host: 10.0.0.11          # the HOST
#       ansible_user: root
#       nixos_container_name: web
#       ansible_python_interpreter: /run/current-system/sw/bin/python3

- name: Configure the inside of the container
  hosts: web
  gather_facts: false
  tasks:
    - name: Works with /bin/sh only
      ansible.builtin.raw: cat /etc/os-release
      changed_when: false

    - name: A file inside the container
      ansible.builtin.copy:
        dest: /etc/motd
        content: "managed by Ansible\n"
        mode: "0644"
'''

import os
import re
import shlex

from ansible.errors import AnsibleConnectionFailure, AnsibleError
from ansible.module_utils.common.text.converters import to_bytes, to_native, to_text
from ansible.plugins.connection import ConnectionBase
from ansible.plugins.loader import connection_loader
from ansible.utils.display import Display

from ansible_collections.nixfleet.containers.plugins.module_utils._paths import LEGACY_CONF_DIR, MODERN_CONF_DIR

display = Display()

UNREACHABLE_EXIT = 125
UNREACHABLE_MARK = 'NIXFLEET-NIXOS-CONTAINER-UNREACHABLE'
CONTAINER_SHELL = '/bin/sh'
CONTAINER_ENV = '/usr/bin/env'      # one of the two FHS paths every NixOS system has, with /bin/sh
CONF_DIRS = (MODERN_CONF_DIR, LEGACY_CONF_DIR)      # 22.05+ and older layouts (facts §2.1)

# ssh itself exits 255 when the connection fails, and when the remote command dies of a signal:
# the host side waits for nsenter (no exec, so a signal shows as 128+N) and relays a real 255
# as RELAYED_255_EXIT with a marker line, which _run_in_container turns back into 255.
EXIT_255_MARK = 'NIXFLEET-NIXOS-CONTAINER-EXIT-255'
RELAYED_255_EXIT = 254
_EXIT_255 = re.compile(r'^%s\r?\n?' % EXIT_255_MARK, re.MULTILINE)

# Host side: find the container's leader, then run nsenter into it with the rest of the
# arguments. Not running (or unknown) ends with a marker line and UNREACHABLE_EXIT, which
# exec_command turns into AnsibleConnectionFailure. Arguments, never interpolated text.
_ENTER = r'''
name=$1; shift
leader=$(machinectl show "$name" -p Leader --value 2>/dev/null) || leader=
case $leader in
  ''|0|*[!0-9]*)
    state="does not exist"
    for dir in %(dirs)s; do
      [ -e "$dir/$name.conf" ] && state="is not running"
    done
    printf '%%s %%s\n' '%(mark)s' "$state" >&2
    exit %(code)d ;;
esac
nsenter --all --target "$leader" -- "$@"
status=$?
if [ "$status" -eq 255 ]; then
  printf '%%s\n' '%(exit_mark)s' >&2
  exit %(relayed)d
fi
exit "$status"
''' % dict(dirs=' '.join(CONF_DIRS), mark=UNREACHABLE_MARK, code=UNREACHABLE_EXIT, exit_mark=EXIT_255_MARK,
           relayed=RELAYED_255_EXIT)

_UNREACHABLE = re.compile(r'^%s (?P<state>[a-z ]+)\r?$' % UNREACHABLE_MARK, re.MULTILINE)

# Inside the container: write stdin to "$1", read "$1" to stdout.
_WRITE = 'cat > "$1"'
_READ = 'cat -- "$1"'


class Connection(ConnectionBase):
    """Commands and files go through the host's connection into the container's namespaces."""

    transport = 'nixfleet.containers.nixos_container'
    has_pipelining = True
    has_tty = False

    def __init__(self, play_context, new_stdin=None, *args, **kwargs):
        super(Connection, self).__init__(play_context, new_stdin, *args, **kwargs)
        self._new_stdin = new_stdin
        self._loader_kwargs = kwargs
        self._host_connection = None
        self._host_connection_name = None
        # The task executor sets the wrapped plugin's options (ansible_host, ansible_user, ...)
        # from the same variables after ours, through this attribute.
        self.ssh_type_conn = self._load_host_connection('ansible.builtin.ssh')

    # -- the wrapped host connection ------------------------------------------------------

    def _load_host_connection(self, name):
        if self._host_connection is not None and name == self._host_connection_name:
            return self._host_connection
        if self._host_connection is not None:
            self._host_connection.close()
        connection = connection_loader.get(name, self._play_context, self._new_stdin, **self._loader_kwargs)
        if connection is None:
            raise AnsibleError('nixos_container: host_connection %r is not a connection plugin' % name)
        if self.become is not None:
            connection.set_become_plugin(self.become)
        self._host_connection, self._host_connection_name = connection, name
        self.ssh_type_conn = connection
        return connection

    def set_options(self, task_keys=None, var_options=None, direct=None):
        super(Connection, self).set_options(task_keys=task_keys, var_options=var_options, direct=direct)
        self._load_host_connection(self.get_option('host_connection'))

    def set_become_plugin(self, plugin):
        super(Connection, self).set_become_plugin(plugin)
        if self._host_connection is not None:
            self._host_connection.set_become_plugin(plugin)

    def _connect(self):
        if not self._connected:
            self._host_connection._connect()
            self._connected = True
        return self

    def close(self):
        if self._host_connection is not None:
            self._host_connection.close()
        self._connected = False

    def reset(self):
        if self._host_connection is not None:
            self._host_connection.reset()

    # -- commands -------------------------------------------------------------------------

    @property
    def container_name(self):
        name = self.get_option('container_name') or self._play_context.remote_addr
        if not name:
            raise AnsibleError('nixos_container: no container name (set nixos_container_name)')
        return to_text(name)

    def _host_command(self, argv_in_container):
        """The command line for the host's shell that runs ARGV in the container."""
        environment = ['PATH=%s' % self.get_option('container_path'), 'HOME=/root', 'USER=root',
                       'LOGNAME=root', 'SHELL=%s' % CONTAINER_SHELL, 'LANG=C.UTF-8']
        argv = (['/bin/sh', '-c', _ENTER, 'nixfleet-nixos-container', self.container_name,
                 CONTAINER_ENV, '-i'] + environment + list(argv_in_container))
        return ' '.join(shlex.quote(word) for word in argv)

    def _run_in_container(self, argv, in_data=None, sudoable=False, host_suffix=''):
        command = self._host_command(argv) + host_suffix
        display.vvv(u'NIXOS-CONTAINER %s: %s' % (self.container_name, ' '.join(argv)),
                    host=self._play_context.remote_addr)
        rc, stdout, stderr = self._host_connection.exec_command(command, in_data=in_data, sudoable=sudoable)
        if rc == RELAYED_255_EXIT:
            # With a tty (raw) ssh brings stderr in stdout: the marker may be in either.
            texts = [to_text(stdout, errors='surrogate_or_strict'), to_text(stderr, errors='surrogate_or_strict')]
            if any(_EXIT_255.search(text) for text in texts):
                stdout, stderr = [to_bytes(_EXIT_255.sub('', text), errors='surrogate_or_strict') for text in texts]
                return 255, stdout, stderr
        if rc == UNREACHABLE_EXIT:
            found = _UNREACHABLE.search(to_text(stderr, errors='surrogate_or_strict')) or \
                _UNREACHABLE.search(to_text(stdout, errors='surrogate_or_strict'))
            if found:
                raise AnsibleConnectionFailure(
                    'NixOS container %r %s on its host %s (no leader PID from machinectl)' % (
                        self.container_name, found.group('state'), self._host_label()))
        return rc, stdout, stderr

    def _host_label(self):
        for option in ('host', 'remote_addr'):
            try:
                value = self._host_connection.get_option(option)
            except KeyError:
                continue
            if value:
                return to_text(value)
        return to_text(self._play_context.remote_addr)

    def exec_command(self, cmd, in_data=None, sudoable=True):
        super(Connection, self).exec_command(cmd, in_data=in_data, sudoable=sudoable)
        return self._run_in_container([CONTAINER_SHELL, '-c', cmd], in_data=in_data, sudoable=sudoable)

    # -- files ----------------------------------------------------------------------------

    def _host_scratch(self):
        rc, stdout, stderr = self._host_connection.exec_command(
            'umask 077 && mktemp -d "${TMPDIR:-/tmp}/.nixfleet-transfer.XXXXXXXX"', sudoable=False)
        directory = to_text(stdout).strip()
        if rc != 0 or not directory.startswith('/'):
            raise AnsibleError('nixos_container: cannot make a scratch directory on the host: %s'
                               % to_native(stderr or stdout))
        return directory

    def put_file(self, in_path, out_path):
        super(Connection, self).put_file(in_path, out_path)
        display.vvv(u'PUT %s TO %s' % (in_path, out_path), host=self.container_name)
        b_in_path = to_bytes(in_path, errors='surrogate_or_strict')
        if not os.path.isfile(b_in_path):
            raise AnsibleError('nixos_container: file or module does not exist: %s' % to_native(in_path))
        if os.path.getsize(b_in_path) <= self.get_option('stream_limit'):
            with open(b_in_path, 'rb') as handle:
                data = handle.read()
            rc, stdout, stderr = self._run_in_container([CONTAINER_SHELL, '-c', _WRITE, 'put', out_path],
                                                        in_data=data)
        else:
            scratch = self._host_scratch()
            staged = scratch + '/file'
            try:
                self._host_connection.put_file(in_path, staged)
                rc, stdout, stderr = self._run_in_container(
                    [CONTAINER_SHELL, '-c', _WRITE, 'put', out_path],
                    host_suffix=' < %s' % shlex.quote(staged))
            finally:
                self._remove_scratch(scratch)
        if rc != 0:
            raise AnsibleError('nixos_container: failed to write %s in container %s: %s' % (
                to_native(out_path), self.container_name, to_native(stderr or stdout).strip()))

    def fetch_file(self, in_path, out_path):
        super(Connection, self).fetch_file(in_path, out_path)
        display.vvv(u'FETCH %s TO %s' % (in_path, out_path), host=self.container_name)
        scratch = self._host_scratch()
        staged = scratch + '/file'
        try:
            rc, stdout, stderr = self._run_in_container([CONTAINER_SHELL, '-c', _READ, 'fetch', in_path],
                                                        host_suffix=' > %s' % shlex.quote(staged))
            if rc != 0:
                raise AnsibleError('nixos_container: failed to read %s in container %s: %s' % (
                    to_native(in_path), self.container_name, to_native(stderr or stdout).strip()))
            self._host_connection.fetch_file(staged, out_path)
        finally:
            self._remove_scratch(scratch)

    def _remove_scratch(self, scratch):
        rc, stdout, stderr = self._host_connection.exec_command('rm -rf -- %s' % shlex.quote(scratch),
                                                                sudoable=False)
        if rc != 0:
            display.warning('nixos_container: could not remove %s on the host: %s'
                            % (scratch, to_native(stderr or stdout)))
