# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read a conf file as systemd reads an ``EnvironmentFile=`` (facts §2.2).

This module_util is PRIVATE to the collection: it may change without notice.

systemd's load_env_file, re-expressed as a state machine.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

ENV_NAME = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*\Z')
_WHITESPACE = ' \t\n\r'


def parse_conf(text):
    """``{KEY: value}`` in file order; the last assignment of a key wins.

    Follows systemd's EnvironmentFile reading: ``#``/``;`` comment lines, blank lines and
    lines without ``=`` are ignored; a value may start with single quotes (literal) or
    double quotes (``\\"``, ``\\\\``, ``\\$``, ``\\``` escapes) and quoted parts join; an
    unquoted value loses its trailing whitespace; a backslash at a line end continues it.
    Assignments to names that are not valid variable names are ignored, as systemd does.
    """
    reader = _EnvReader()
    for char in text:
        reader.feed(char)
    reader.feed('\n')
    return reader.values


class _EnvReader(object):
    def __init__(self):
        self.values = {}
        self.state = self._pre_key
        self.key = []
        self.value = []
        self.trim_at = None     # where trailing unquoted whitespace starts, if any

    def feed(self, char):
        self.state(char)

    def _finish(self):
        key = ''.join(self.key).rstrip(_WHITESPACE)
        value = self.value[:self.trim_at] if self.trim_at is not None else self.value
        if ENV_NAME.match(key):
            self.values[key] = ''.join(value)
        self.key, self.value, self.trim_at = [], [], None
        self.state = self._pre_key

    def _pre_key(self, char):
        if char in _WHITESPACE:
            return
        if char in '#;':
            self.state = self._comment
        else:
            self.key.append(char)
            self.state = self._key

    def _key(self, char):
        if char in '\n\r':
            self.key = []               # a line without '=' is ignored
            self.state = self._pre_key
        elif char == '=':
            self.state = self._pre_value
        else:
            self.key.append(char)

    def _pre_value(self, char):
        if char in '\n\r':
            self._finish()
        elif char == "'":
            self.state = self._single_quoted
        elif char == '"':
            self.state = self._double_quoted
        elif char == '\\':
            self.state = self._value_escape
        elif char not in _WHITESPACE:
            self.value.append(char)
            self.state = self._value

    def _value(self, char):
        if char in '\n\r':
            self._finish()
        elif char == '\\':
            self.trim_at = None
            self.state = self._value_escape
        else:
            if char not in _WHITESPACE:
                self.trim_at = None
            elif self.trim_at is None:
                self.trim_at = len(self.value)
            self.value.append(char)

    def _value_escape(self, char):
        self.state = self._value
        if char not in '\n\r':          # backslash-newline continues the line
            self.value.append(char)

    def _single_quoted(self, char):
        if char == "'":
            self.state = self._pre_value
        else:
            self.value.append(char)

    def _double_quoted(self, char):
        if char == '"':
            self.state = self._pre_value
        elif char == '\\':
            self.state = self._double_quoted_escape
        else:
            self.value.append(char)

    def _double_quoted_escape(self, char):
        self.state = self._double_quoted
        if char in '"\\`$':
            self.value.append(char)
        elif char != '\n':
            self.value.extend(('\\', char))

    def _comment(self, char):
        if char == '\\':
            self.state = self._comment_escape
        elif char in '\n\r':
            self.state = self._pre_key

    def _comment_escape(self, char):
        self.state = self._comment
