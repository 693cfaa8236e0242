# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``nixfleet.containers.to_nix`` filter: data to Nix text, with the modules' renderer.

Documented in ``to_nix.yml`` beside this file.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from collections.abc import Mapping, Sequence

from ansible.errors import AnsibleFilterError

from ansible_collections.nixfleet.containers.plugins.module_utils._nix import to_nix as render


def _plain(value):
    """Ansible's own containers and string types (lazy templated dicts and lists, tagged or
    unsafe strings) as the plain dict/list/str/int/float/bool/None the renderer accepts."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return str.__str__(value)       # a plain str, whatever subclass Ansible handed over
    if isinstance(value, Mapping):
        return dict((_plain(key), _plain(item)) for key, item in value.items())
    if isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        return [_plain(item) for item in value]
    return value                        # the renderer names what it cannot render


def to_nix(value, indent=0):
    """Nix expression text for ``value``."""
    if isinstance(indent, bool) or not isinstance(indent, int) or indent < 0:
        raise AnsibleFilterError('to_nix: indent must be a non-negative integer, got %r' % (indent,))
    try:
        return render(_plain(value), indent)
    except ValueError as exc:
        raise AnsibleFilterError('to_nix: %s' % exc)


class FilterModule(object):

    def filters(self):
        return {'to_nix': to_nix}
