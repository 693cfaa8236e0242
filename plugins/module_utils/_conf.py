# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write, check and compare ``<confdir>/NAME.conf`` (facts §2.2, §2.3).

This module_util is PRIVATE to the collection: it may change without notice.

The file is read twice on a host: by systemd as the unit's ``EnvironmentFile=`` and by the
``nixos-container`` Perl script with line-anchored regular expressions. Values are later
expanded *unquoted* by the unit's start script, so they are word-split and globbed. Hence:
single-word keys are written bare (the Perl regexes would not see quoted values), and what
the unit cannot carry (quotes, ``$``, backslashes, whitespace inside a path) is refused.

Reading it is ``_envfile``'s; turning module options into conf values and back, ``_conf_options``'s.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import ipaddress
import re
import unicodedata

from ansible_collections.nixfleet.containers.plugins.module_utils._envfile import ENV_NAME
from ansible_collections.nixfleet.containers.plugins.module_utils._names import interface_name_error
from ansible_collections.nixfleet.containers.plugins.module_utils._options import MOUNT_FLAGS, OPTION_FOR_FLAG, OPTION_FOR_KEY

# What `nixos-container create` writes, in its order (facts §2.3).
IMPERATIVE_KEYS = ('PRIVATE_NETWORK', 'HOST_ADDRESS', 'LOCAL_ADDRESS', 'HOST_BRIDGE',
                   'HOST_PORT', 'AUTO_START', 'FLAKE')
# Keys only the declarative module writes, in the declarative module's order (facts §2.3).
DECLARATIVE_ONLY_KEYS = ('SYSTEM_PATH', 'COPY_RESOLV_CONF', 'HOST_ADDRESS6', 'LOCAL_ADDRESS6',
                         'LOCAL_MAC_ADDRESS', 'NETWORK_NAMESPACE_PATH', 'PRIVATE_USERS',
                         'INTERFACES', 'MACVLANS', 'EXTRA_NSPAWN_FLAGS')
# Our own bookkeeping; the unit ignores it. The conf's FLAKE loses '#attr' (facts P-11).
NIXFLEET_PREFIX = 'NIXFLEET_'
NIXFLEET_KEYS = ('NIXFLEET_FLAKE_ATTR',)
KNOWN_KEYS = IMPERATIVE_KEYS + DECLARATIVE_ONLY_KEYS + NIXFLEET_KEYS

# Space-separated lists the unit word-splits; the declarative module double-quotes them.
WORD_LIST_KEYS = ('INTERFACES', 'MACVLANS', 'EXTRA_NSPAWN_FLAGS')
# Keys the unit's start script expands unquoted, so glob characters would be expanded.
EXPANDED_KEYS = frozenset(('PRIVATE_NETWORK', 'HOST_ADDRESS', 'LOCAL_ADDRESS', 'HOST_ADDRESS6',
                           'LOCAL_ADDRESS6', 'LOCAL_MAC_ADDRESS', 'HOST_BRIDGE', 'HOST_PORT',
                           'NETWORK_NAMESPACE_PATH', 'PRIVATE_USERS', 'SYSTEM_PATH')
                          + WORD_LIST_KEYS)
FLAG_KEYS = ('PRIVATE_NETWORK', 'AUTO_START', 'COPY_RESOLV_CONF')
PRIVATE_USERS_WORDS = ('no', 'identity', 'pick', 'yes')
PROTOCOLS = ('tcp', 'udp')

CAPABILITY_FLAG = '--capability='

# Characters that no value may hold: systemd's EnvironmentFile gives the quotes and the
# backslash a meaning, the start script would expand '$' and '`' in some places, and a
# newline would end the line.
FORBIDDEN_CHARACTERS = '\n\r"\'\\$`\0'
GLOB_CHARACTERS = '*?['
_MAC = re.compile(r'^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}\Z')
_PREFIX = re.compile(r'^[0-9]{1,3}\Z')
_CAPABILITY = re.compile(r'^(CAP_[A-Z0-9_]+|all)\Z')
_WHITESPACE = ' \t\n\r'
DECIMAL = re.compile(r'^[0-9]+\Z')   # str.isdigit() also accepts other scripts' digits


# ---------------------------------------------------------------------------------------
# Writing

def _text(key, value):
    """A conf value as text: None is empty, booleans are 0/1."""
    if value is None:
        return ''
    if isinstance(value, bool):
        return '1' if value else '0'
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value
    raise ValueError('%s: a conf value must be text, a number or a boolean, got %s'
                     % (_label(key), type(value).__name__))


def _label(key):
    option = OPTION_FOR_KEY.get(key)
    return '%s (%s)' % (option, key) if option else key


def _line(key, value):
    if key in WORD_LIST_KEYS:
        return '%s="%s"\n' % (key, value)
    return '%s=%s\n' % (key, value)


def render_conf(values):
    """The conf file text for ``values`` (one renderer for every conf the module writes).

    With only the keys ``nixos-container create`` writes, the text is byte-identical to the
    CLI's (facts §2.3). Other known keys follow in the declarative module's order and only
    when non-empty, then our ``NIXFLEET_*`` keys, then unknown keys in their given order.
    """
    text = dict((key, _text(key, value)) for key, value in values.items())
    private_network = text.get('PRIVATE_NETWORK') or '0'
    lines = [_line('PRIVATE_NETWORK', private_network)]
    for key in ('HOST_ADDRESS', 'LOCAL_ADDRESS'):
        # Host network: the CLI writes no address lines, but never drop a value silently.
        if private_network == '1' or text.get(key):
            lines.append(_line(key, text.get(key, '')))
    lines.append(_line('HOST_BRIDGE', text.get('HOST_BRIDGE', '')))
    lines.append(_line('HOST_PORT', text.get('HOST_PORT', '')))
    lines.append(_line('AUTO_START', text.get('AUTO_START') or '0'))
    for key in ('FLAKE',) + DECLARATIVE_ONLY_KEYS + NIXFLEET_KEYS:
        if text.get(key):
            lines.append(_line(key, text[key]))
    others = [key for key in text if key not in KNOWN_KEYS]
    ours = [key for key in others if key.startswith(NIXFLEET_PREFIX)]
    foreign = [key for key in others if not key.startswith(NIXFLEET_PREFIX)]
    lines.extend(_line(key, text[key]) for key in ours if text[key])
    lines.extend(_line(key, text[key]) for key in foreign)
    return ''.join(lines)


# ---------------------------------------------------------------------------------------
# Characters a value may hold

def _control_characters(value):
    """systemd refuses environment values with control characters (other than tab/newline)."""
    return sorted(set(c for c in value if unicodedata.category(c) == 'Cc'))


def check_word(name, word):
    """One word of a word-split list: joined with spaces later, so it must stay one word."""
    bad = sorted(set(word) & set(FORBIDDEN_CHARACTERS + GLOB_CHARACTERS + ' \t\v\f') | set(_control_characters(word)))
    if bad:
        raise ValueError('%s: %r contains %s; the unit splits and expands this value unquoted, '
                         'so whitespace, quotes, "$", "\\" and glob characters are impossible'
                         % (name, word, ', '.join(repr(c) for c in bad)))


# ---------------------------------------------------------------------------------------
# Checking

def conf_values_error(values):
    """Why the unit could not carry ``values`` faithfully (all reasons, '; '-joined), or None."""
    errors = conf_values_errors(values)
    return '; '.join(errors) if errors else None


def conf_values_errors(values):
    """Every reason ``values`` cannot be written as a conf, each naming its option."""
    errors = []
    text = {}       # every value as text, for checks about which keys are set
    clean = {}      # only values made of characters the conf can carry, for format checks
    for key, value in values.items():
        if not isinstance(key, str) or not ENV_NAME.match(key):
            errors.append('%r is not a valid conf key' % (key,))
            continue
        try:
            text[key] = _text(key, value)
        except ValueError as exc:
            errors.append(str(exc))
            continue
        problems = _characters_errors(key, text[key])
        errors.extend(problems)
        if not problems:
            clean[key] = text[key]
    for check in (_flag_errors, _address_errors, _mac_errors, _port_errors, _interface_errors,
                  _path_errors, _private_users_errors, _nspawn_flag_errors, _gateway_errors, _mount_point_errors):
        errors.extend(check(clean))
    errors.extend(_pairing_errors(text))
    errors.extend(_network_mode_errors(text))
    return errors


def _characters_errors(key, value):
    label = _label(key)
    bad = sorted(set(value) & set(FORBIDDEN_CHARACTERS) | set(_control_characters(value)))
    if bad:
        return ['%s: %r contains %s, which the conf file cannot carry'
                % (label, value, ', '.join(repr(c) for c in bad))]
    words = [value]
    if key in WORD_LIST_KEYS:
        words = value.split(' ')
        if (value and not all(words)) or set(value) & set('\t\v\f'):
            return ['%s: %r must be words separated by single spaces' % (label, value)]
    elif key in KNOWN_KEYS and set(value) & set(' \t\v\f'):
        return ['%s: %r contains whitespace; the unit splits values at whitespace' % (label, value)]
    elif value != value.strip(' \t\v\f'):
        return ['%s: %r starts or ends with whitespace, which systemd would drop' % (label, value)]
    if key in EXPANDED_KEYS:
        for word in words:
            if set(word) & set(GLOB_CHARACTERS):
                return ['%s: %r contains a glob character (%s); the unit expands it unquoted'
                        % (_flag_label(key, word), word, GLOB_CHARACTERS)]
    return []


def _flag_label(key, word):
    if key != 'EXTRA_NSPAWN_FLAGS':
        return _label(key)
    for prefix, option in OPTION_FOR_FLAG:
        if word.startswith(prefix):
            return '%s (%s)' % (option, key)
    return _label(key)


def _flag_errors(text):
    return ['%s: must be 0 or 1, got %r' % (_label(key), text[key])
            for key in FLAG_KEYS if text.get(key, '') not in ('', '0', '1')]


def _address_errors(text):
    # HOST_ADDRESS/LOCAL_ADDRESS take either family, as on NixOS: the unit passes them to `ip`,
    # which infers it. The *6 keys take IPv6 only (the unit uses `ip -6`).
    errors = []
    for key, version in (('HOST_ADDRESS', None), ('LOCAL_ADDRESS', None),
                         ('HOST_ADDRESS6', 6), ('LOCAL_ADDRESS6', 6)):
        if text.get(key) and parse_address(text[key], version) is None:
            errors.append('%s: %r is not an %s address with an optional /prefix'
                          % (_label(key), text[key], 'IPv6' if version else 'IPv4 or IPv6'))
    return errors


def parse_address(value, version=None):
    """``ipaddress.ip_interface`` of ``ADDRESS[/PREFIX]`` (of that IP version when given), or None."""
    address, slash, prefix = value.partition('/')
    if slash and not _PREFIX.match(prefix):
        return None                     # no netmask or hostmask forms: `ip addr` wants a length
    try:
        interface = ipaddress.ip_interface(value)
    except ValueError:
        return None
    if (version and interface.version != version) or '%' in address:
        return None
    return interface


def _pairing_errors(text):
    errors = []
    for host_key, local_key in (('HOST_ADDRESS', 'LOCAL_ADDRESS'), ('HOST_ADDRESS6', 'LOCAL_ADDRESS6')):
        host, local = text.get(host_key, ''), text.get(local_key, '')
        if bool(host) != bool(local) and not text.get('HOST_BRIDGE'):
            # Without a bridge the unit configures both ends of ve-NAME from the pair.
            given, missing = (host_key, local_key) if host else (local_key, host_key)
            errors.append('%s is set, so %s is required as well (unless host_bridge is set)'
                          % (_label(given), _label(missing)))
        if host and local and host.split('/')[0] == local.split('/')[0]:
            errors.append('%s and %s must differ, both are %s'
                          % (_label(host_key), _label(local_key), host.split('/')[0]))
        host_ip, local_ip = parse_address(host), parse_address(local)
        if host_ip and local_ip and host_ip.version != local_ip.version:
            # The container's default route via HOST_ADDRESS needs an address of its own family.
            errors.append('%s (%s) and %s (%s) must be of the same IP version'
                          % (_label(host_key), host, _label(local_key), local))
    return errors


def _mac_errors(text):
    mac = text.get('LOCAL_MAC_ADDRESS', '')
    if not mac:
        return []
    if not _MAC.match(mac):
        return ['%s: %r is not a MAC address like 02:00:00:00:00:01' % (_label('LOCAL_MAC_ADDRESS'), mac)]
    if int(mac[:2], 16) & 1:
        return ['%s: %r is a multicast address, which an interface cannot have'
                % (_label('LOCAL_MAC_ADDRESS'), mac)]
    return []


def parse_port_spec(item):
    """``(protocol, host_port, container_port)`` of an nspawn ``[PROTO:]HOST[:CONTAINER]``."""
    parts = item.split(':')
    protocol = parts.pop(0) if parts[0] in PROTOCOLS else 'tcp'
    if not 1 <= len(parts) <= 2 or not all(DECIMAL.match(part) for part in parts):
        raise ValueError('%r is not [tcp:|udp:]HOST_PORT[:CONTAINER_PORT]' % item)
    numbers = [int(part) for part in parts]
    for number in numbers:
        if not 1 <= number <= 65535:
            raise ValueError('port %d in %r is outside 1..65535' % (number, item))
    return protocol, numbers[0], numbers[-1]


def _port_errors(text):
    value = text.get('HOST_PORT', '')
    if not value:
        return []
    errors, seen = [], set()
    for item in value.split(','):
        try:
            protocol, host_port = parse_port_spec(item)[:2]
        except ValueError as exc:
            errors.append('%s: %s' % (_label('HOST_PORT'), exc))
            continue
        if (protocol, host_port) in seen:
            errors.append('%s: host port %d/%s is forwarded more than once'
                          % (_label('HOST_PORT'), host_port, protocol))
        seen.add((protocol, host_port))
    return errors


def _interface_errors(text):
    errors = []
    for key in ('HOST_BRIDGE', 'INTERFACES', 'MACVLANS'):
        seen = set()
        for ifname in text.get(key, '').split():
            problem = interface_name_error(ifname)
            if problem:
                errors.append('%s: %s' % (_label(key), problem))
            if ifname in seen:
                errors.append('%s: %s is listed more than once' % (_label(key), ifname))
            seen.add(ifname)
    # A moved interface is gone from the host, so nspawn could not put a macvlan on it.
    for ifname in sorted(set(text.get('INTERFACES', '').split()) & set(text.get('MACVLANS', '').split())):
        errors.append('%s: %s is also in %s; an interface moved into the container cannot carry a macvlan'
                      % (_label('INTERFACES'), ifname, _label('MACVLANS')))
    return errors


def _path_errors(text):
    return ['%s: %r must be an absolute path' % (_label(key), text[key])
            for key in ('SYSTEM_PATH', 'NETWORK_NAMESPACE_PATH')
            if text.get(key) and not text[key].startswith('/')]


def _private_users_errors(text):
    value = text.get('PRIVATE_USERS', '')
    if not value or value in PRIVATE_USERS_WORDS:
        return []
    if DECIMAL.match(value) and int(value) <= 0xFFFFFFFF:
        return []
    return ['%s: %r must be no, identity, pick or a UID between 0 and 4294967295'
            % (_label('PRIVATE_USERS'), value)]


def _nspawn_flag_errors(text):
    """Mount points given twice, and malformed capability lists, in EXTRA_NSPAWN_FLAGS."""
    errors, seen = [], {}
    for word in text.get('EXTRA_NSPAWN_FLAGS', '').split():
        option, mount_point = _mount_of_flag(word)
        if option:
            if mount_point in seen:
                errors.append('%s: mount point %s is given more than once (also in %s)'
                              % (option, mount_point, seen[mount_point]))
            seen.setdefault(mount_point, option)
        if word.startswith(CAPABILITY_FLAG):
            for capability in word[len(CAPABILITY_FLAG):].split(','):
                if not _CAPABILITY.match(capability):
                    errors.append('%s: %r is not a capability name like CAP_NET_ADMIN'
                                  % (option_of_flag(CAPABILITY_FLAG), capability))
    return errors


def option_of_flag(word):
    """The option that writes the nspawn flag WORD (by its prefix), or None."""
    for prefix, option in OPTION_FOR_FLAG:
        if word.startswith(prefix):
            return option
    return None


def _gateway_errors(text):
    """Without a bridge the guest's default route goes via the host address: no prefix there."""
    if text.get('HOST_BRIDGE'):
        return []
    errors = ['%s: %r must be a plain address (no /prefix): the container\'s default route goes via it'
              % (_label(key), text[key]) for key in ('HOST_ADDRESS', 'HOST_ADDRESS6') if '/' in text.get(key, '')]
    # The host routes LOCAL_ADDRESS to ve-NAME as written: `ip route` refuses host bits under a prefix.
    for key, version in (('LOCAL_ADDRESS', 4),):
        interface = parse_address(text[key], version) if '/' in text.get(key, '') else None
        if interface is not None and interface.ip != interface.network.network_address:
            errors.append('%s: %r cannot be routed to the container (host bits under the /prefix): give it '
                          'without a prefix' % (_label(key), text[key]))
    return errors


def _mount_point_errors(text):
    """Mount points nspawn could never mount: relative, the root itself, or through '..'."""
    errors = []
    for word in text.get('EXTRA_NSPAWN_FLAGS', '').split():
        option, mount_point = _mount_of_flag(word)
        if not option:
            continue
        paths = [('mount point', mount_point)]
        if option == 'bind_mounts':
            paths.append(('host path', word.split('=', 1)[1].split(':')[0]))
        for what, path in paths:
            if not path.startswith('/'):
                errors.append('%s: %s %r must be an absolute path' % (option, what, path))
            elif '..' in path.split('/'):
                errors.append('%s: %s %r must not contain ".."' % (option, what, path))
            elif what == 'mount point' and not path.strip('/'):
                errors.append('%s: %s %r is the container\'s root' % (option, what, path))
    return errors


def _mount_of_flag(word):
    """``(option, mount point)`` of a mount flag (MOUNT_FLAGS), else (None, None)."""
    for prefix, spec_kind in MOUNT_FLAGS:
        if word.startswith(prefix):
            spec = word[len(prefix):].split(':')
            if spec_kind == 'mount':
                return option_of_flag(word), spec[0]
            return option_of_flag(word), spec[1] if len(spec) > 1 else spec[0]
    return None, None


def _network_mode_errors(text):
    errors = []
    private = text.get('PRIVATE_NETWORK', '') == '1'
    if not private:
        # Without a private network the unit ignores these (the declarative module drops them).
        for key in ('HOST_ADDRESS', 'LOCAL_ADDRESS', 'HOST_ADDRESS6', 'LOCAL_ADDRESS6',
                    'LOCAL_MAC_ADDRESS', 'HOST_BRIDGE', 'HOST_PORT'):
            if text.get(key):
                errors.append('%s needs private_network' % _label(key))
    if text.get('NETWORK_NAMESPACE_PATH') and (private or text.get('INTERFACES')):
        errors.append('%s cannot be combined with private_network or interfaces'
                      % _label('NETWORK_NAMESPACE_PATH'))
    return errors


# ---------------------------------------------------------------------------------------
# Comparing

def normalise_conf(values):
    """Conf values in one canonical form, for comparisons.

    Missing and empty are the same (empty values are dropped); PRIVATE_NETWORK and
    AUTO_START are always present as '0' or '1' (the unit tests ``= 1``); word lists are
    single-spaced; PRIVATE_USERS=no is nspawn's default, so it is dropped; HOST_PORT items
    are spelled ``proto:host:container`` and sorted. Addresses stay as written.
    """
    normal = {}
    for key, value in values.items():
        text = _text(key, value).strip(_WHITESPACE)
        if key in WORD_LIST_KEYS:
            text = ' '.join(text.split())
        elif key == 'PRIVATE_USERS' and text == 'no':
            text = ''
        elif key == 'HOST_PORT':
            text = _normal_ports(text)
        if text:
            normal[key] = text
    for key in ('PRIVATE_NETWORK', 'AUTO_START'):
        normal[key] = '1' if normal.get(key) == '1' else '0'
    return normal


def _normal_ports(value):
    items = [item for item in value.split(',') if item]
    try:
        return ','.join(sorted('%s:%d:%d' % parse_port_spec(item) for item in items))
    except ValueError:
        return value


def conf_differences(current, desired):
    """``[(key, before, after), ...]`` where the normalised values differ ('' = missing)."""
    before, after = normalise_conf(current), normalise_conf(desired)
    order = list(KNOWN_KEYS)
    for key in list(after) + list(before):
        if key not in order:
            order.append(key)
    return [(key, before.get(key, ''), after.get(key, '')) for key in order
            if before.get(key, '') != after.get(key, '')]
