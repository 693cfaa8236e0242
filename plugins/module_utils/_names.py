# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Container and interface name rules (facts §3).

This module_util is PRIVATE to the collection: it may change without notice.

The rules are stricter than the ``nixos-container`` CLI on purpose: the CLI accepts ``_``,
which machined and declarative containers refuse, so a name that works everywhere avoids it.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

# The CLI refuses longer names on create (facts §3): 've-' + 11 characters fit old nspawn.
MAX_NAME_LENGTH = 11
# The kernel's IFNAMSIZ is 16 bytes including the terminating NUL.
IFNAMSIZ_MAX = 15
# systemd refuses longer machine names (and host names); declarative names are bounded by it.
MAX_MACHINE_NAME_LENGTH = 64
# NixOS asserts the 11-character limit for declarative containers with privateNetwork only on
# kernels whose version compares at or below this (no interface altnames before 5.8).
ALTNAME_KERNEL = '5.8'

_NAME_CHARACTERS = re.compile(r'^[a-zA-Z0-9_-]+\Z')
# The kernel refuses these bytes in interface names (dev_valid_name: '/', ':' and isspace()).
_IFNAME_FORBIDDEN = frozenset('/: \t\n\v\f\r\0')


def container_name_error(name, max_length=MAX_NAME_LENGTH):
    """Why ``name`` cannot name a container, or None when it can.

    ``max_length``: the CLI's 11 characters by default (facts §3); declarative containers pass
    :func:`declarative_max_length`.
    """
    if not isinstance(name, str):
        return 'container name must be a string, got %s' % type(name).__name__
    if not name:
        return 'container name must not be empty'
    if not _NAME_CHARACTERS.match(name):
        return ('container name %r may only contain letters, digits and "-"' % name)
    if '_' in name:
        return ('container name %r contains "_": machined and declarative NixOS containers '
                'refuse names with underscores' % name)
    if name.startswith('-'):
        return 'container name %r must not start with "-" (it would be read as an option)' % name
    if len(name) > max_length:
        if max_length >= MAX_MACHINE_NAME_LENGTH:
            return ('container name %r is %d characters long, systemd allows at most %d'
                    % (name, len(name), max_length))
        return ('container name %r is %d characters long, at most %d are allowed: the host-side '
                'interface ve-%s must fit the kernel\'s %d-byte interface names'
                % (name, len(name), max_length, name, IFNAMSIZ_MAX))
    return None


def declarative_max_length(private_network, kernel_release):
    """The longest declarative name NixOS accepts: 11 characters with a private network on a
    kernel whose version compares at or below 5.8 (no altnames, so a shortened ``ve-`` name
    could not be found), else systemd's machine name limit."""
    if private_network and compare_versions(kernel_release, ALTNAME_KERNEL) <= 0:
        return MAX_NAME_LENGTH
    return MAX_MACHINE_NAME_LENGTH


def _version_components(version):
    # As Nix's builtins.splitVersion: runs of digits and runs of other characters; '.' and '-' separate.
    return re.findall(r'[0-9]+|[^0-9.\-]+', version)


def _component_order(a, b):
    if a == b:
        return 0
    a_number, b_number = a.isdigit(), b.isdigit()
    if a_number and b_number:
        return (int(a) > int(b)) - (int(a) < int(b))
    if a == '' and b_number:
        return -1
    if b == '' and a_number:
        return 1
    if a == 'pre':
        return -1
    if b == 'pre':
        return 1
    if b_number:
        return -1
    if a_number:
        return 1
    return (a > b) - (a < b)


def compare_versions(a, b):
    """-1, 0 or 1 as Nix's ``builtins.compareVersions`` orders versions A and B."""
    left, right = _version_components(a), _version_components(b)
    for index in range(max(len(left), len(right))):
        order = _component_order(left[index] if index < len(left) else '',
                                 right[index] if index < len(right) else '')
        if order:
            return order
    return 0


def host_interface_name(name, bridged=False):
    """The host side of the container's veth: ``vb-NAME`` when bridged, else ``ve-NAME``."""
    return ('vb-' if bridged else 've-') + name


def interface_name_error(ifname):
    """Why the kernel would refuse ``ifname`` as an interface name, or None."""
    if not isinstance(ifname, str):
        return 'interface name must be a string, got %s' % type(ifname).__name__
    if not ifname:
        return 'interface name must not be empty'
    if ifname in ('.', '..'):
        return 'interface name %r is not allowed' % ifname
    size = len(ifname.encode('utf-8', 'surrogatepass'))
    if size > IFNAMSIZ_MAX:
        return ('interface name %r is %d bytes long, the kernel allows at most %d'
                % (ifname, size, IFNAMSIZ_MAX))
    bad = sorted(set(ifname) & _IFNAME_FORBIDDEN)
    if bad:
        return ('interface name %r must not contain %s'
                % (ifname, ', '.join(repr(c) for c in bad)))
    return None
