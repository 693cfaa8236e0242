# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read, write, build, check and compare ``<confdir>/NAME.conf`` (facts §2.2, §2.3).

This module_util is PRIVATE to the collection: it may change without notice.

The file is read twice on a host: by systemd as the unit's ``EnvironmentFile=`` and by the
``nixos-container`` Perl script with line-anchored regular expressions. Values are later
expanded *unquoted* by the unit's start script, so they are word-split and globbed. Hence:
single-word keys are written bare (the Perl regexes would not see quoted values), and what
the unit cannot carry (quotes, ``$``, backslashes, whitespace inside a path) is refused.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import ipaddress
import re
import unicodedata

from ansible_collections.nixfleet.containers.plugins.module_utils._names import interface_name_error

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

# The module option each key comes from, so messages name what the user wrote.
OPTION_FOR_KEY = {
    'PRIVATE_NETWORK': 'private_network',
    'HOST_ADDRESS': 'host_address',
    'LOCAL_ADDRESS': 'local_address',
    'HOST_ADDRESS6': 'host_address6',
    'LOCAL_ADDRESS6': 'local_address6',
    'LOCAL_MAC_ADDRESS': 'local_mac_address',
    'HOST_BRIDGE': 'host_bridge',
    'HOST_PORT': 'forward_ports',
    'AUTO_START': 'auto_start',
    'FLAKE': 'flake',
    'NIXFLEET_FLAKE_ATTR': 'flake_attr',
    'SYSTEM_PATH': 'system_path',
    'COPY_RESOLV_CONF': 'copy_resolv_conf',
    'NETWORK_NAMESPACE_PATH': 'network_namespace_path',
    'PRIVATE_USERS': 'private_users',
    'INTERFACES': 'interfaces',
    'MACVLANS': 'macvlans',
    'EXTRA_NSPAWN_FLAGS': 'extra_flags',
}
# Which option put a flag into EXTRA_NSPAWN_FLAGS, by the flag's prefix.
OPTION_FOR_FLAG = (
    ('--bind-ro=', 'bind_mounts'),
    ('--bind=', 'bind_mounts'),
    ('--capability=', 'additional_capabilities'),
    ('--tmpfs=', 'tmpfs'),
    ('--ephemeral', 'ephemeral'),
)

# Characters that no value may hold: systemd's EnvironmentFile gives the quotes and the
# backslash a meaning, the start script would expand '$' and '`' in some places, and a
# newline would end the line.
FORBIDDEN_CHARACTERS = '\n\r"\'\\$`\0'
GLOB_CHARACTERS = '*?['
_ENV_NAME = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*\Z')
_MAC = re.compile(r'^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}\Z')
_PREFIX = re.compile(r'^[0-9]{1,3}\Z')
_CAPABILITY = re.compile(r'^(CAP_[A-Z0-9_]+|all)\Z')
_FLAKE_WITH_ATTR = re.compile(r'^(.*)#([^#"]+)\Z')
_WHITESPACE = ' \t\n\r'
_DECIMAL = re.compile(r'^[0-9]+\Z')   # str.isdigit() also accepts other scripts' digits


# ---------------------------------------------------------------------------------------
# Reading: systemd's EnvironmentFile= parser (load_env_file), re-expressed as a state machine.

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
        if _ENV_NAME.match(key):
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
# Building from module options

def conf_from_options(opts):
    """The conf values of an imperative container from the module's options.

    ``opts`` maps option names to values; a missing option or None means "not given".
    Options: private_network (default True, as ``create``), host_address, local_address,
    host_address6, local_address6, local_mac_address, host_bridge, forward_ports, bind_mounts,
    additional_capabilities, enable_tun, tmpfs, ephemeral, extra_flags, private_users,
    auto_start, flake (``ref`` or ``ref#attr``), flake_attr, system_path, and also
    interfaces, macvlans, network_namespace_path and copy_resolv_conf (facts P-13: only
    written when given). The six keys ``create`` always writes are always present.
    Raises ValueError, naming the option, for input of the wrong shape; check the result
    with :func:`conf_values_error` for values the unit cannot carry.
    """
    private_network = _option_bool(opts, 'private_network', default=True)
    flake, flake_attr = _flake_and_attr(opts)
    values = {
        'PRIVATE_NETWORK': '1' if private_network else '0',
        'HOST_ADDRESS': _option_text(opts, 'host_address'),
        'LOCAL_ADDRESS': _option_text(opts, 'local_address'),
        'HOST_BRIDGE': _option_text(opts, 'host_bridge'),
        'HOST_PORT': ','.join(_port_specs(opts.get('forward_ports'))),
        'AUTO_START': '1' if _option_bool(opts, 'auto_start', default=False) else '0',
    }
    optional = (
        ('FLAKE', flake),
        ('SYSTEM_PATH', _option_text(opts, 'system_path')),
        ('COPY_RESOLV_CONF', _optional_flag(opts, 'copy_resolv_conf')),
        ('HOST_ADDRESS6', _option_text(opts, 'host_address6')),
        ('LOCAL_ADDRESS6', _option_text(opts, 'local_address6')),
        ('LOCAL_MAC_ADDRESS', _option_text(opts, 'local_mac_address')),
        ('NETWORK_NAMESPACE_PATH', _option_text(opts, 'network_namespace_path')),
        ('PRIVATE_USERS', _private_users(opts.get('private_users'))),
        ('INTERFACES', ' '.join(_option_list(opts, 'interfaces'))),
        ('MACVLANS', ' '.join(_option_list(opts, 'macvlans'))),
        ('EXTRA_NSPAWN_FLAGS', ' '.join(_nspawn_flags(opts))),
        ('NIXFLEET_FLAKE_ATTR', flake_attr),
    )
    for key, value in optional:
        if value:
            values[key] = value
    return values


def _option_text(opts, name):
    value = opts.get(name)
    if value is None:
        return ''
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError('%s must be a string, got %s' % (name, type(value).__name__))
    return str(value)


def _option_bool(opts, name, default):
    value = opts.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ValueError('%s must be a boolean, got %r' % (name, value))
    return value


def _optional_flag(opts, name):
    if opts.get(name) is None:
        return ''
    return '1' if _option_bool(opts, name, default=False) else '0'


def _option_list(opts, name):
    value = opts.get(name)
    if value is None:
        return []
    if isinstance(value, (str, bytes, dict)) or not hasattr(value, '__iter__'):
        raise ValueError('%s must be a list, got %s' % (name, type(value).__name__))
    items = list(value)
    for item in items:
        if not isinstance(item, str) or not item:
            raise ValueError('%s: every item must be a non-empty string, got %r' % (name, item))
        _check_word(name, item)
    return items


def _control_characters(value):
    """systemd refuses environment values with control characters (other than tab/newline)."""
    return sorted(set(c for c in value if unicodedata.category(c) == 'Cc'))


def _check_word(name, word):
    """One word of a word-split list: joined with spaces later, so it must stay one word."""
    bad = sorted(set(word) & set(FORBIDDEN_CHARACTERS + GLOB_CHARACTERS + ' \t\v\f') | set(_control_characters(word)))
    if bad:
        raise ValueError('%s: %r contains %s; the unit splits and expands this value unquoted, '
                         'so whitespace, quotes, "$", "\\" and glob characters are impossible'
                         % (name, word, ', '.join(repr(c) for c in bad)))


def _list_of_dicts(value, name):
    if value is None:
        return []
    if isinstance(value, (str, bytes, dict)) or not hasattr(value, '__iter__'):
        raise ValueError('%s must be a list of dictionaries, got %s' % (name, type(value).__name__))
    items = list(value)
    for item in items:
        if not isinstance(item, dict):
            raise ValueError('%s: every item must be a dictionary, got %r' % (name, item))
    return items


def _flake_and_attr(opts):
    flake = _option_text(opts, 'flake')
    attr = _option_text(opts, 'flake_attr')
    match = _FLAKE_WITH_ATTR.match(flake)
    if match:
        # Split 'ref#attr' the way the CLI does; the conf's FLAKE never holds the attribute.
        if attr and attr != match.group(2):
            raise ValueError('flake %r names the attribute %r but flake_attr is %r: give it once'
                             % (flake, match.group(2), attr))
        flake, attr = match.group(1), match.group(2)
    if attr and not flake:
        raise ValueError('flake_attr needs flake')
    return flake, attr


def _port_number(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not _DECIMAL.match(str(value)):
        raise ValueError('forward_ports: %s must be a port number, got %r' % (name, value))
    return int(value)


def _port_specs(forward_ports):
    """``proto:host:container`` for each forward, as the declarative module writes HOST_PORT."""
    specs = []
    for item in _list_of_dicts(forward_ports, 'forward_ports'):
        protocol = item.get('protocol') or 'tcp'
        if protocol not in PROTOCOLS:
            raise ValueError('forward_ports: protocol must be tcp or udp, got %r' % (protocol,))
        if item.get('host_port') is None:
            raise ValueError('forward_ports: host_port is required in %r' % (item,))
        host_port = _port_number(item['host_port'], 'host_port')
        container_port = item.get('container_port')
        container_port = host_port if container_port is None else _port_number(container_port, 'container_port')
        specs.append('%s:%d:%d' % (protocol, host_port, container_port))
    return specs


def _private_users(value):
    if value is None:
        return ''
    if isinstance(value, bool):
        raise ValueError('private_users must be no, identity, pick or a number, got %r' % value)
    if isinstance(value, int):
        if not 0 <= value <= 0xFFFFFFFF:
            raise ValueError('private_users must be between 0 and 4294967295, got %d' % value)
        return str(value)
    if isinstance(value, str):
        return value
    raise ValueError('private_users must be no, identity, pick or a number, got %r' % (value,))


def _nspawn_flags(opts):
    """EXTRA_NSPAWN_FLAGS words: what the template unit cannot express itself (facts §5.1).

    Order: bind mounts (as the declarative module), --capability, --tmpfs, --ephemeral,
    then extra_flags.
    """
    flags = [_bind_flag(item) for item in _list_of_dicts(opts.get('bind_mounts'), 'bind_mounts')]
    capabilities = _option_list(opts, 'additional_capabilities')
    if _option_bool(opts, 'enable_tun', default=False) and 'CAP_NET_ADMIN' not in capabilities:
        # The declarative enableTun also sets DeviceAllow=/dev/net/tun rwm on its own unit;
        # a conf cannot set that for the imperative template, so only the capability is added.
        capabilities.append('CAP_NET_ADMIN')
    if capabilities:
        flags.append('--capability=' + ','.join(capabilities))
    flags.extend('--tmpfs=' + path for path in _option_list(opts, 'tmpfs'))
    if _option_bool(opts, 'ephemeral', default=False):
        flags.append('--ephemeral')
    flags.extend(_option_list(opts, 'extra_flags'))
    return flags


def _bind_flag(item):
    mount_point = item.get('mount_point')
    host_path = item.get('host_path')
    if host_path is None:
        host_path = mount_point
    for name, path in (('mount_point', mount_point), ('host_path', host_path)):
        if not isinstance(path, str) or not path.startswith('/'):
            raise ValueError('bind_mounts: %s must be an absolute path, got %r' % (name, path))
        if ':' in path:
            # nspawn separates host and container path with ':'.
            raise ValueError('bind_mounts: %s %r must not contain ":"' % (name, path))
        _check_word('bind_mounts', path)
    read_only = item.get('read_only')
    if read_only is None:
        read_only = True                # as the declarative isReadOnly default
    if not isinstance(read_only, bool):
        raise ValueError('bind_mounts: read_only must be a boolean, got %r' % (read_only,))
    return '%s=%s:%s' % ('--bind-ro' if read_only else '--bind', host_path, mount_point)


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
        if not isinstance(key, str) or not _ENV_NAME.match(key):
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
    errors = []
    for key, version in (('HOST_ADDRESS', 4), ('LOCAL_ADDRESS', 4),
                         ('HOST_ADDRESS6', 6), ('LOCAL_ADDRESS6', 6)):
        if text.get(key) and parse_address(text[key], version) is None:
            errors.append('%s: %r is not an IPv%d address with an optional /prefix'
                          % (_label(key), text[key], version))
    return errors


def parse_address(value, version):
    """``ipaddress.ip_interface`` of ``ADDRESS[/PREFIX]`` of that IP version, or None."""
    address, slash, prefix = value.partition('/')
    if slash and not _PREFIX.match(prefix):
        return None                     # no netmask or hostmask forms: `ip addr` wants a length
    try:
        interface = ipaddress.ip_interface(value)
    except ValueError:
        return None
    if interface.version != version or '%' in address:
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
    if not 1 <= len(parts) <= 2 or not all(_DECIMAL.match(part) for part in parts):
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
        for ifname in text.get(key, '').split():
            problem = interface_name_error(ifname)
            if problem:
                errors.append('%s: %s' % (_label(key), problem))
    return errors


def _path_errors(text):
    return ['%s: %r must be an absolute path' % (_label(key), text[key])
            for key in ('SYSTEM_PATH', 'NETWORK_NAMESPACE_PATH')
            if text.get(key) and not text[key].startswith('/')]


def _private_users_errors(text):
    value = text.get('PRIVATE_USERS', '')
    if not value or value in PRIVATE_USERS_WORDS:
        return []
    if _DECIMAL.match(value) and int(value) <= 0xFFFFFFFF:
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
        if word.startswith('--capability='):
            for capability in word[len('--capability='):].split(','):
                if not _CAPABILITY.match(capability):
                    errors.append('additional_capabilities: %r is not a capability name like CAP_NET_ADMIN'
                                  % capability)
    return errors


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
    """``(option, mount point)`` of a --bind/--bind-ro/--tmpfs flag, else (None, None)."""
    for prefix, option in (('--bind=', 'bind_mounts'), ('--bind-ro=', 'bind_mounts'),
                           ('--tmpfs=', 'tmpfs')):
        if word.startswith(prefix):
            spec = word[len(prefix):].split(':')
            if option == 'tmpfs':
                return option, spec[0]
            return option, spec[1] if len(spec) > 1 else spec[0]
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


# ---------------------------------------------------------------------------------------
# Reading back into module options (the inverse of conf_from_options)

# The module options a conf file carries.
CONF_OPTION_NAMES = ('private_network', 'host_address', 'local_address', 'host_address6',
                     'local_address6', 'local_mac_address', 'host_bridge', 'forward_ports',
                     'bind_mounts', 'ephemeral', 'tmpfs', 'enable_tun', 'additional_capabilities',
                     'extra_flags', 'private_users', 'auto_start')
# Options that only mean something with a private network (facts §2.3: left out otherwise).
NETWORK_OPTION_NAMES = ('host_address', 'local_address', 'host_address6', 'local_address6',
                        'local_mac_address', 'host_bridge', 'forward_ports')


def options_from_conf(values):
    """The module options a conf describes, so that conf_from_options gives the conf back.

    Flags in EXTRA_NSPAWN_FLAGS that no option produces (or that carry nspawn mount
    options) come back as extra_flags; an extra flag that looks exactly like a bind mount
    comes back as one.
    """
    values = dict((k, v) for k, v in values.items())
    options = dict(
        private_network=values.get('PRIVATE_NETWORK', '0') == '1',
        auto_start=values.get('AUTO_START', '0') == '1',
        forward_ports=[_port_option(spec) for spec in _words(values.get('HOST_PORT', ''), ',')],
        flake=values.get('FLAKE') or None,
        flake_attr=values.get('NIXFLEET_FLAKE_ATTR') or None,
        private_users=values.get('PRIVATE_USERS') or None,
        system_path=values.get('SYSTEM_PATH') or None,
        interfaces=_words(values.get('INTERFACES', '')) or None,
        macvlans=_words(values.get('MACVLANS', '')) or None,
        network_namespace_path=values.get('NETWORK_NAMESPACE_PATH') or None,
    )
    if values.get('COPY_RESOLV_CONF'):
        options['copy_resolv_conf'] = values['COPY_RESOLV_CONF'] == '1'
    for key in ('HOST_ADDRESS', 'LOCAL_ADDRESS', 'HOST_ADDRESS6', 'LOCAL_ADDRESS6', 'LOCAL_MAC_ADDRESS',
                'HOST_BRIDGE'):
        options[OPTION_FOR_KEY[key]] = values.get(key) or None
    options.update(_flag_options(_words(values.get('EXTRA_NSPAWN_FLAGS', ''))))
    return options


def _words(text, separator=None):
    return [w for w in (text.split(separator) if separator else text.split()) if w.strip()]


def _port_option(spec):
    """nspawn's ``[PROTOCOL:]HOSTPORT[:CONTAINERPORT]``."""
    parts = spec.strip().split(':')
    protocol = parts.pop(0) if parts and parts[0] in PROTOCOLS else 'tcp'
    host_port = int(parts[0]) if parts and _DECIMAL.match(parts[0]) else parts[0] if parts else None
    container_port = parts[1] if len(parts) > 1 else host_port
    if isinstance(container_port, str) and _DECIMAL.match(container_port):
        container_port = int(container_port)
    return dict(protocol=protocol, host_port=host_port, container_port=container_port)


def _flag_options(words):
    options = dict(bind_mounts=[], additional_capabilities=[], tmpfs=[], ephemeral=False, extra_flags=[])
    for word in words:
        prefix, sep, rest = word.partition('=')
        if prefix in ('--bind', '--bind-ro') and sep and rest.count(':') <= 1:
            host_path, colon, mount_point = rest.partition(':')
            options['bind_mounts'].append(dict(mount_point=mount_point if colon else host_path,
                                               host_path=host_path, read_only=prefix == '--bind-ro'))
        elif prefix == '--capability' and sep:
            options['additional_capabilities'].extend(c for c in rest.split(',') if c)
        elif prefix == '--tmpfs' and sep:
            options['tmpfs'].append(rest)
        elif word == '--ephemeral':
            options['ephemeral'] = True
        else:
            options['extra_flags'].append(word)
    return options
