# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Data to Nix text, the imperative container's configuration.nix, and a Nix syntax check.

This module_util is PRIVATE to the collection: it may change without notice.

Rendering is injection-proof: every string becomes one Nix string literal (``${`` escaped,
so nothing is interpolated) and every attribute name not a plain identifier is quoted, so
no data can add an attribute or evaluate code. Output is deterministic and keeps the order
of the given dicts (Nix sorts attributes itself when it evaluates, so order is cosmetic).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import math
import re
import sys

NIX_KEYWORDS = frozenset(['if', 'then', 'else', 'assert', 'with', 'let', 'in', 'rec',
                          'inherit', 'or', '__curPos'])
PATH_MARKER = '_nix_path'
PACKAGE_MARKER = '_nix_package'
INT_MIN = -(2 ** 63)
INT_MAX = 2 ** 63 - 1
NIX_PARSE_ARGV = ['nix-instantiate', '--store', 'dummy://', '--parse', '-']
INDENT_STEP = 2

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_'-]*\Z")
_PATH_SEGMENT = re.compile(r'^[A-Za-z0-9._+-]+\Z')
_STRING_ESCAPES = {'\\': '\\\\', '"': '\\"', '\n': '\\n', '\r': '\\r', '\t': '\\t'}


# ---------------------------------------------------------------------------------------
# Atoms

def nix_string(text):
    """A double-quoted Nix string literal holding exactly ``text``."""
    if '\0' in text:
        raise ValueError('Nix strings cannot hold a NUL character: %r' % (text,))
    try:
        text.encode('utf-8')
    except UnicodeEncodeError:
        raise ValueError('string %r is not valid Unicode (lone surrogate)' % (text,))
    out = []
    for index, char in enumerate(text):
        if char == '$' and text[index + 1:index + 2] == '{':
            out.append('\\$')           # only "${" starts an interpolation; a lone "$" is literal
        else:
            out.append(_STRING_ESCAPES.get(char, char))
    return '"%s"' % ''.join(out)


def is_identifier(name):
    """True when ``name`` can be written bare as a Nix attribute name."""
    return bool(_IDENTIFIER.match(name)) and name not in NIX_KEYWORDS


def attr_name(name):
    """An attribute name: bare when it is a plain identifier, else a quoted string."""
    if not isinstance(name, str):
        raise ValueError('attribute names must be strings, got %r' % (name,))
    return name if is_identifier(name) else nix_string(name)


def nix_int(number):
    if not INT_MIN <= number <= INT_MAX:
        raise ValueError('integer %d does not fit Nix\'s 64-bit integers' % number)
    if number == INT_MIN:
        return '(%d - 1)' % (number + 1)    # the literal 2**63 itself is out of range
    return str(number)


def nix_float(number):
    """A float literal Nix reads back as the same double (its lexer needs a '.')."""
    if not math.isfinite(number):
        raise ValueError('Nix has no literal for %r' % (number,))
    if number != 0 and abs(number) < sys.float_info.min:
        # Nix's lexer refuses subnormal literals (strtod reports ERANGE); its JSON reader doesn't.
        return '(builtins.fromJSON "%r")' % number
    mantissa, has_exponent, exponent = repr(abs(number)).partition('e')
    if '.' not in mantissa:
        mantissa += '.0'
    literal = mantissa + ('e' + exponent if has_exponent else '')
    return '-' + literal if math.copysign(1.0, number) < 0 else literal


def nix_path(path):
    """A Nix path literal for an absolute, plain path (no '..', no trailing '/')."""
    if not isinstance(path, str) or not path.startswith('/'):
        raise ValueError('a Nix path must be an absolute path string, got %r' % (path,))
    segments = path[1:].split('/')
    for segment in segments:
        if not _PATH_SEGMENT.match(segment) or segment in ('.', '..'):
            raise ValueError('path %r cannot be a Nix path literal: each part between "/" must be '
                             'non-empty, not "." or "..", and only use A-Z a-z 0-9 . _ + -' % (path,))
    return path


def nix_package(name):
    """``pkgs.NAME`` for a dotted attribute path such as ``python3Packages.requests``."""
    if not isinstance(name, str) or not all(is_identifier(part) for part in name.split('.')):
        raise ValueError('package %r must be a dotted path of Nix identifiers, e.g. '
                         'python3Packages.requests' % (name,))
    return 'pkgs.' + name


def _marker(value):
    """The Nix text of a typed marker dict, or None when ``value`` is not one."""
    if len(value) != 1:
        return None
    (key, inner), = value.items()
    if key == PATH_MARKER:
        return nix_path(inner)
    if key == PACKAGE_MARKER:
        return nix_package(inner)
    return None


# ---------------------------------------------------------------------------------------
# Values

def to_nix(value, indent=0):
    """Nix text for JSON-like ``value`` (dict, list, str, int, float, bool, None).

    ``indent`` is the indentation of the line the value starts on; nested lines get two
    more spaces. A one-key dict ``{"_nix_path": "/abs"}`` becomes a path literal and
    ``{"_nix_package": "hello"}`` becomes ``pkgs.hello``. Anything else raises ValueError.
    """
    return _render(value, indent)[0]


def _render(value, indent):
    """``(text, atomic)``; atomic text can stand as a list element without parentheses."""
    if value is None:
        return 'null', True
    if isinstance(value, bool):
        return ('true' if value else 'false'), True
    if isinstance(value, int):
        text = nix_int(value)
        return text, not text.startswith('-')   # parenthesised forms are atomic
    if isinstance(value, float):
        text = nix_float(value)
        return text, not text.startswith('-')   # parenthesised forms are atomic
    if isinstance(value, str):
        return nix_string(value), True
    if isinstance(value, dict):
        return _render_dict(value, indent), True
    if isinstance(value, (list, tuple)):
        return _render_list(value, indent), True
    raise ValueError('cannot render %s as Nix: only dicts, lists, strings, numbers, booleans '
                     'and null are data' % type(value).__name__)


def _render_list(items, indent):
    if not items:
        return '[ ]'
    inner = indent + INDENT_STEP
    elements = [_list_element(item, inner) for item in items]
    if all('\n' not in element for element in elements):
        return '[ %s ]' % ' '.join(elements)
    pad = ' ' * inner
    return '[\n%s\n%s]' % ('\n'.join(pad + element for element in elements), ' ' * indent)


def _list_element(item, indent):
    text, atomic = _render(item, indent)
    return text if atomic else '(%s)' % text


def _render_dict(value, indent):
    marker = _marker(value)
    if marker is not None:
        return marker
    if not value:
        return '{ }'
    inner = indent + INDENT_STEP
    pad = ' ' * inner
    lines = ['%s%s = %s;' % (pad, attr_name(key), to_nix(item, inner)) for key, item in value.items()]
    return '{\n%s\n%s}' % ('\n'.join(lines), ' ' * indent)


def render_settings_body(settings, indent=2):
    """Module-body lines for ``settings``, one ``a.b.c = value;`` per leaf, in given order.

    Nested dicts become dotted attribute paths, so the lines merge with the template's own
    ``networking.*`` lines instead of redefining ``networking``. Lines after the first are
    indented by ``indent`` spaces, to be spliced where the template's EXTRA text goes.
    Setting an attribute the template sets too (e.g. networking.hostName) is a Nix error.
    """
    if not isinstance(settings, dict):
        raise ValueError('settings must be a dictionary, got %s' % type(settings).__name__)
    lines = ['%s = %s;' % ('.'.join(attr_name(part) for part in path), to_nix(value, indent))
             for path, value in _leaves([], settings)]
    return ('\n' + ' ' * indent).join(lines)


def _leaves(path, value):
    if isinstance(value, dict) and value and _marker(value) is None:
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError('settings keys must be strings, got %r' % (key,))
            yield from _leaves(path + [key], item)
    elif not path:
        return                          # empty settings: no lines
    else:
        yield path, value


# ---------------------------------------------------------------------------------------
# configuration.nix of an imperative container (facts §2.4)

_TEMPLATE_HEAD = ('{ config, lib, pkgs, ... }:\n'
                  '\n'
                  '{ boot.isNspawnContainer = true;\n'
                  '  networking.hostName = lib.mkDefault %s;\n'
                  '  networking.useDHCP = false;\n'
                  '  ')
_TEMPLATE_TAIL = '\n}\n'
# What the newest and older nixos-container scripts wrote (isContainer, with lib; mkDefault).
_TEMPLATE_READER = (r'\A\{ config, lib, pkgs, \.\.\. \}:\n\n'
                    r'(?:with lib;\n\n?)?'
                    r'\{ boot\.(?:isNspawnContainer|isContainer) = true;\n'
                    r'  networking\.hostName = (?:lib\.)?mkDefault %s;\n'
                    r'  networking\.useDHCP = false;\n'
                    r'  (?P<extra>.*)\n\}\n\Z')


def render_configuration_nix(name, extra=None, config_file=None):
    """The configuration.nix ``nixos-container create/update`` writes (newest script).

    EXTRA is ``extra`` verbatim, or ``imports = [ /abs/path ];`` for ``config_file``, or
    nothing (the line is then just two spaces).
    """
    if extra and config_file:
        raise ValueError('config and config_file are mutually exclusive: give one or the other')
    if extra:
        body = extra
    elif config_file:
        try:
            body = 'imports = [ %s ];' % nix_path(config_file)
        except ValueError as exc:
            raise ValueError('config_file: %s' % exc)
    else:
        body = ''
    return _TEMPLATE_HEAD % nix_string(name) + body + _TEMPLATE_TAIL


def extract_extra_config(text, name):
    """The EXTRA part of a configuration.nix that follows the template, else None."""
    match = re.match(_TEMPLATE_READER % re.escape(nix_string(name)), text, re.DOTALL)
    return match.group('extra') if match else None


# ---------------------------------------------------------------------------------------
# Syntax check

def nix_parse_error(text, run):
    """nix's message when ``text`` is not valid Nix, else None.

    ``run(argv, data=...)`` must return ``(rc, stdout, stderr)``; the text goes to the
    parser on stdin (``--store dummy://`` needs no store, no daemon and no root).
    """
    rc, stdout, stderr = run(list(NIX_PARSE_ARGV), data=text)
    if rc == 0:
        return None
    message = (stderr or '').strip() or (stdout or '').strip()
    return message or 'nix-instantiate --parse failed with exit status %d' % rc


def nix_nul_error(text):
    """Why TEXT cannot be handed to Nix as given, or None: Nix reads a NUL as the end of the
    text (or of a string), so what it applied would not be what was given."""
    if '\0' in (text or ''):
        return 'the text contains a NUL character, which Nix cannot read'
    return None


# The arguments of the guest module, and how ``nix-instantiate --parse`` prints that head.
GUEST_MODULE_ARGS = '{ config, lib, pkgs, ... }:'
CONFIGURATION_HEAD = '(%s ' % GUEST_MODULE_ARGS


def nix_attrset_body_error(body, run):
    """Why ``body`` is not the body of ONE attribute set, or None.

    nixos-container splices ``--config`` text into the braces of its template. Text that
    closes those braces (``} // import /x // {``, ``} { ``) still parses as a whole, and only
    fails, or worse succeeds, when evaluated. Parsed on its own inside braces, a real body
    prints back as one attribute set; anything else prints as an application or operator in
    parentheses.
    """
    # Inside the guest module's function: the parser refuses variables it cannot resolve, and
    # the body may use the module's arguments (config, lib, pkgs).
    rc, stdout, stderr = run(list(NIX_PARSE_ARGV), data='%s {\n%s\n}' % (GUEST_MODULE_ARGS, body))
    if rc != 0:
        message = (stderr or '').strip() or (stdout or '').strip()
        return message or 'nix-instantiate --parse failed with exit status %d' % rc
    printed = (stdout or '').lstrip()
    inside = printed[len(CONFIGURATION_HEAD):] if printed.startswith(CONFIGURATION_HEAD) else printed.partition('}: ')[2]
    if not inside.startswith(('{', 'rec {')):
        return ('the text is not the body of one attribute set: it closes the braces nixos-container '
                'puts around it (parsed as %s)' % printed.strip()[:200])
    return None


def nix_configuration_error(text, body, run):
    """Why TEXT (render_configuration_nix's text around BODY) is not valid, else None, in ONE
    parse where possible: TEXT must parse, and the function's body must print back as one
    attribute set (BODY did not close the template's braces, see nix_attrset_body_error).
    When the printed text does not start as expected (another Nix version), BODY is checked
    on its own with a second parse."""
    rc, stdout, stderr = run(list(NIX_PARSE_ARGV), data=text)
    if rc != 0:
        message = (stderr or '').strip() or (stdout or '').strip()
        return message or 'nix-instantiate --parse failed with exit status %d' % rc
    printed = (stdout or '').lstrip()
    if not printed.startswith(CONFIGURATION_HEAD):
        return nix_attrset_body_error(body, run)
    inside = printed[len(CONFIGURATION_HEAD):]
    if inside.startswith(('{', 'rec {')):
        return None
    return ('the text is not the body of one attribute set: it closes the braces nixos-container '
            'puts around it (the configuration parsed as %s)' % inside.strip()[:200])
