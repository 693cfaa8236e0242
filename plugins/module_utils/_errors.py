# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's errors: each one knows the fail_json arguments it becomes.

This module_util is PRIVATE to the collection: it may change without notice.

Every error the collection raises is a :class:`NixfleetError`, whose ``as_dict()`` is what
``fail_json`` reports (the message, and the command, exit status and output when a command
failed). Bad input is an :class:`InputError` (also a ``ValueError``), raised before anything
changes. ``_host.run_module`` turns them into ``fail_json``.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type


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
