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

_NAME_CHARACTERS = re.compile(r'^[a-zA-Z0-9_-]+\Z')
# The kernel refuses these bytes in interface names (dev_valid_name: '/', ':' and isspace()).
_IFNAME_FORBIDDEN = frozenset('/: \t\n\v\f\r\0')


def container_name_error(name):
    """Why ``name`` cannot name a container, or None when it can."""
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
    if len(name) > MAX_NAME_LENGTH:
        return ('container name %r is %d characters long, at most %d are allowed: the host-side '
                'interface ve-%s must fit the kernel\'s %d-byte interface names'
                % (name, len(name), MAX_NAME_LENGTH, name, IFNAMSIZ_MAX))
    return None


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
