# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host layer every module shares: errors, run_module(), binary lookup, the lock, atomic writes.

This module_util is PRIVATE to the collection: it may change without notice.

Errors: every error the collection raises is a :class:`NixfleetError`, whose ``as_dict()`` is
what ``fail_json`` reports (the message, and the command, exit status and output when a
command failed). Bad input is an :class:`InputError` (also a ``ValueError``), raised before
anything changes. :func:`run_module` turns them, and ``OSError`` from the host's files, into
``fail_json``; every module's ``main()`` goes through it.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import fcntl
import os
import tempfile

# Where NixOS keeps its commands besides PATH: the system profile and the setuid wrappers; the
# sbin directories for ip, nft, iptables and sysctl on other distributions.
SEARCH_DIRS = ['/run/current-system/sw/bin', '/run/wrappers/bin', '/usr/sbin', '/sbin']
# Serialises this collection's mutating runs on one host (allocation, create, conf writes).
# nixos-container create takes /run/lock/nixos-container itself, so we cannot hold that one across create.
MODULE_LOCK_PATH = '/run/lock/nixfleet-containers'


class NixfleetError(Exception):
    """An error the module reports: ``as_dict()`` is the ``fail_json`` arguments."""

    def __init__(self, msg, cmd=None, rc=None, stdout=None, stderr=None):
        super(NixfleetError, self).__init__(msg)
        self.msg = msg
        self.cmd = cmd
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr

    def as_dict(self):
        """The message and whatever is known of the command that failed."""
        fields = dict(msg=self.msg, cmd=self.cmd, rc=self.rc, stdout=self.stdout, stderr=self.stderr)
        return dict((k, v) for k, v in fields.items() if v is not None)


class InputError(NixfleetError, ValueError):
    """The parameters cannot be carried out; raised before anything changes."""


def failure_of(error):
    """The ``fail_json`` arguments of an error (ours carry more than a message)."""
    if isinstance(error, NixfleetError):
        return error.as_dict()
    return dict(msg=str(error))


def run_module(module, work, partial=None):
    """Every module's main(): WORK() -> the result, reported with exit_json.

    A result with ``failed`` set is reported with fail_json (it carries its own ``msg``). An
    error of ours, a ``ValueError`` or an ``OSError`` fails the module with its message, plus
    PARTIAL() (what was done before it, e.g. the commands that ran).
    """
    try:
        result = work()
    except (NixfleetError, ValueError, OSError) as error:
        failure = dict(partial() if partial else {})
        failure.update(failure_of(error))
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
