# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host layer every module shares: run_module(), binary lookup, the lock, atomic writes,
and the one read of a host's containers (:class:`HostState`).

This module_util is PRIVATE to the collection: it may change without notice.

Every module's ``main()`` goes through :func:`run_module`, which turns the collection's errors
(``_errors``), ``ValueError`` and ``OSError`` from the host's files into ``fail_json``.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import contextlib
import fcntl
import json
import os
import shutil
import tempfile

from ansible_collections.nixfleet.containers.plugins.module_utils._addressing import (
    allocate_pair,
    collect_used_ipv4,
    collect_used_networks,
)
from ansible_collections.nixfleet.containers.plugins.module_utils._cli import Runner
from ansible_collections.nixfleet.containers.plugins.module_utils._conflicts import conflicts
from ansible_collections.nixfleet.containers.plugins.module_utils._envfile import parse_conf
from ansible_collections.nixfleet.containers.plugins.module_utils._errors import failure_of, InputError, NixfleetError
from ansible_collections.nixfleet.containers.plugins.module_utils._paths import Layout
from ansible_collections.nixfleet.containers.plugins.module_utils._state import read_containers

# Where NixOS keeps its commands besides PATH: the system profile and the setuid wrappers; the
# sbin directories for ip, nft, iptables and sysctl on other distributions.
SEARCH_DIRS = ['/run/current-system/sw/bin', '/run/wrappers/bin', '/usr/sbin', '/sbin']
# Serialises this collection's mutating runs on one host (allocation, create, conf writes).
# nixos-container create takes /run/lock/nixos-container itself, so we cannot hold that one across create.
MODULE_LOCK_PATH = '/run/lock/nixfleet-containers'


def run_module(module, work, partial=None):
    """Every module's main(): WORK() -> the result, reported with exit_json.

    A result with ``failed`` set is reported with fail_json (it carries its own ``msg``). An
    error of ours, a ``ValueError`` or an ``OSError`` fails the module with its message, plus
    PARTIAL() (what was done before it, e.g. the commands that ran; its ``msg_suffix`` goes after
    the message).
    """
    try:
        result = work()
    except (NixfleetError, ValueError, OSError) as error:
        failure = dict(partial() if partial else {})
        suffix = failure.pop('msg_suffix', '')
        failure.update(failure_of(error))
        if suffix:
            failure['msg'] = '%s%s' % (failure.get('msg', ''), suffix)
        module.fail_json(**failure)
    if result.get('failed'):
        module.fail_json(**result)
    module.exit_json(**result)


def binary_finder(module):
    """``which(name)``: the module's get_bin_path over SEARCH_DIRS and PATH, None when missing."""
    found = {}

    def which(name):
        if name not in found:
            found[name] = module.get_bin_path(name, required=False, opt_dirs=SEARCH_DIRS)
        return found[name]
    return which


class Commands(object):
    """The host's commands as argv lists, on the host or inside its network namespace NETNS.

    ``query`` runs a read and returns ``(rc, stdout, stderr)``; ``call`` runs a change, records
    its argv in ``actions`` and raises ``error`` (the caller's error type) when it fails.
    """

    error = NixfleetError

    def __init__(self, run, which, netns=None):
        self._run = run
        self.which = which
        self.netns = netns
        self.actions = []

    @classmethod
    def of(cls, module, netns=None):
        return cls(lambda argv, data=None: module.run_command(argv, data=data), binary_finder(module), netns)

    def wrap(self, argv):
        if self.netns:
            return [self.which('ip') or 'ip', 'netns', 'exec', self.netns] + list(argv)
        return list(argv)

    def query(self, argv, data=None):
        return self._run(self.wrap(argv), data=data)

    def call(self, argv, what, data=None):
        argv = self.wrap(argv)
        self.actions.append(argv)
        rc, out, err = self._run(argv, data=data)
        if rc != 0:
            raise self.error('%s failed: %s' % (what, (err or out or 'exit status %d' % rc).strip()),
                             argv, rc, out, err)
        return out


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
    """PATH holds TEXT or what it held before, never a part (a rename in the same directory)."""
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
    with ONE ``systemctl show`` (of the units systemd has loaded); the IPv4 addresses in use (every conf file and the live
    links and routes) are read at most once, and each pair handed out in the run is claimed,
    so containers allocated in one run never collide with each other.
    """

    def __init__(self, module, nixos_container_bin=None):
        self.module = module
        self.layout = Layout.detect()
        self._which = binary_finder(module)
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
        self._links = None
        self._warned = set()
        self._query = Runner(self.run, systemctl=self.systemctl)

    # plumbing ---------------------------------------------------------------------------
    def run(self, argv, data=None, cwd=None):
        return self.module.run_command(argv, data=data, cwd=cwd)

    def bin(self, name, required=True):
        path = self._which(name)
        if required and not path:
            raise InputError(_MISSING_BINARY.get(name, '%s was not found on the host') % name)
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
        self._containers.update(read_containers(self.layout, names, self._query.show_units))

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
        """(IPv4 addresses, subnets) in use: every conf but EXCLUDE's, live links and routes, this run's claims."""
        if self._conf_addresses is None:
            self._conf_addresses = {}
            for name in self.layout.list_names():
                container = self._containers.get(name)
                conf = container['conf'] if container else parse_conf(read_file(self.layout.conf_path(name)) or '')
                self._conf_addresses[name] = (collect_used_ipv4([conf]), collect_used_networks([conf]))
        if self._live is None:
            addresses, networks = self._live_ipv4()
            self._live = (collect_used_ipv4([], live=addresses), collect_used_networks([], live=networks))
        used, networks = set(self._live[0]) | self.claimed, set(self._live[1])
        for name, (addresses, subnets) in self._conf_addresses.items():
            if name != exclude:
                used |= addresses
                networks |= subnets
        return used, networks

    def plan_conf(self, name, conf):
        """What NAME's conf will be after this run (None: the container goes)."""
        self.planned[name] = conf

    def _confs_now(self):
        now = {}
        for other in self.layout.list_names():
            container = self._containers.get(other)
            now[other] = container['conf'] if container else parse_conf(read_file(self.layout.conf_path(other)) or '')
        return now

    def conflict_errors(self, name, conf):
        """Conflicts of NAME's CONF with the other containers and the host's addresses.

        Containers apply one after another, so another container counts with its conf of now
        and with its conf after this run (unless it goes).
        """
        now, after = self._confs_now(), {}
        after.update(self.planned)
        for other, planned in self.planned.items():
            if planned is None:
                now.pop(other, None)
        if self._live_addresses is None:
            self._live_addresses = self._live_interface_addresses()
        errors = conflicts(name, conf, now, self._live_addresses)
        return errors + [e for e in conflicts(name, conf, after) if e not in errors]

    def missing_link_errors(self, name, conf):
        """The host links a start of NAME with CONF needs and the host lacks (nspawn would fail:
        "Failed to resolve interface"). A link some container has moved in (INTERFACES) is away
        from the host while it runs, so it counts as there (conflict_errors judges who holds it)."""
        if self._links is None:
            self._links = self._link_kinds() or {}
        links = self._links
        if not links:
            return []
        moved = set()
        for other_conf in self._confs_now().values():
            moved |= set((other_conf.get('INTERFACES') or '').split())
        errors = []
        bridge = (conf.get('HOST_BRIDGE') or '').strip()
        if bridge and bridge not in links:
            errors.append('host_bridge: bridge %s does not exist on the host, so container %s could not start' % (bridge, name))
        elif bridge and links[bridge] != 'bridge':
            errors.append('host_bridge: %s is not a bridge (kind %s), so container %s could not start'
                          % (bridge, links[bridge] or 'none', name))
        for key, option in (('INTERFACES', 'interfaces'), ('MACVLANS', 'macvlans')):
            for link in (conf.get(key) or '').split():
                if link not in links and link not in moved:
                    errors.append('%s: host interface %s does not exist on the host, so container %s could not start'
                                  % (option, link, name))
        return errors

    def _link_kinds(self):
        """{host link name: its kind ('' for a plain device)}, None when ip cannot tell (read once a run:
        the starts of the run add only their own ve-/vb- links)."""
        ip = self.bin('ip', required=False)
        if not ip:
            return None
        rc, out, err = self.run([ip, '-j', '-d', 'link', 'show'])
        if rc != 0 or not out.strip():
            return None
        return dict((link.get('ifname', ''), (link.get('linkinfo') or {}).get('info_kind', '')) for link in json.loads(out))

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
        host, local = allocate_pair(*self.used_ipv4(exclude))
        self.claimed |= set([host, local])
        return str(host), str(local)

    def _live_ipv4(self):
        """(addresses and route destinations, on-link subnets) of the host. A subnet reached
        through a gateway is left out: the pair's own /32 routes win over it."""
        ip = self.bin('ip', required=False)
        if not ip:
            return [], []
        found, networks = [], []
        rc, out, err = self.run([ip, '-j', '-4', 'addr', 'show'])
        if rc == 0 and out.strip():
            for link in json.loads(out):
                found += [a['local'] for a in link.get('addr_info', []) if a.get('local')]
        rc, out, err = self.run([ip, '-j', '-4', 'route', 'show', 'table', 'all'])
        if rc == 0 and out.strip():
            routes = [r for r in json.loads(out) if r.get('dst', 'default') not in ('default',)]
            found += [r['dst'] for r in routes]
            networks += [r['dst'] for r in routes if r.get('scope') == 'link' and '/' in r['dst']]
        return found, networks


_MISSING_BINARY = {
    'nixos-container': '%s was not found on the host. On NixOS 25.11 and newer it is only installed '
                       'with boot.enableContainers = true; set it in the host configuration '
                       '(or give nixos_container_bin)',
    'systemctl': '%s was not found on the host: is this a systemd (NixOS) host?',
}


def read_file(path):
    """The text of PATH, or None when it cannot be read."""
    try:
        with open(path) as f:
            return f.read()
    except (IOError, OSError):
        return None
