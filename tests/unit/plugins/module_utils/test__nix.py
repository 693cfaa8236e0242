# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ansible_collections.nixfleet.containers.plugins.module_utils._nix import (
    INT_MAX,
    INT_MIN,
    NIX_PARSE_ARGV,
    attr_name,
    extract_extra_config,
    nix_float,
    nix_parse_error,
    nix_string,
    render_configuration_nix,
    render_settings_body,
    to_nix,
)

HOSTILE_STRINGS = [
    '"', '\\', '\\"', '${', '${x}', '\\${x}', '$${x}', '$', '$$', 'a$', '$"', '${builtins.abort "x"}',
    "''", "''${x}", "'''", "''\\n", '\n', '\r\n', '\t', '\x0b\x0c\x1b\x7f', '#', '/*', '*/',
    '"; injected = true; x = "', '} // { injected = true; } // {', '"\n}\n{ injected = true;',
    'a.b', 'a b', '', ' ', 'if', 'or', 'rec', 'let', 'inherit', '__curPos', 'true', 'null',
    'x-y', "x'", '-x', '1x', '\u00e9\u00e8', '\U0001f600', '\u202e', '\u2028', '\ufeff', '\\u0041',
]

# A Nix function comparing two values by type and content (floats exactly, unlike Nix's
# lossy float printing), so a value rendered by to_nix can be compared with its JSON.
NIX_SAME = '''
let
  same = a: b:
    let t = builtins.typeOf a; in
    t == builtins.typeOf b && (
      if t == "list" then
        builtins.length a == builtins.length b
        && builtins.all (i: same (builtins.elemAt a i) (builtins.elemAt b i))
                        (builtins.genList (i: i) (builtins.length a))
      else if t == "set" then
        builtins.attrNames a == builtins.attrNames b
        && builtins.all (k: same a.${k} b.${k}) (builtins.attrNames a)
      else a == b);
in same
'''


def check_round_trip(nix, values):
    """Render every value into one file, let nix parse and evaluate it once, and compare
    each with the same value read by Nix from JSON; also compare nix's JSON output with the
    Python value where that output is exact (no floats, no keys toJSON treats specially).
    """
    nix.write('same.nix', NIX_SAME)
    nix.write('reference.json', json.dumps(values))
    rendered = [to_nix(value, indent=4) for value in values]
    exact = [i for i, value in enumerate(values) if _json_exact(value)]
    text = ('let\n  same = import ./same.nix;\n'
            '  reference = builtins.fromJSON (builtins.readFile ./reference.json);\n'
            '  rendered = [\n%s\n  ];\n'
            'in {\n'
            '  same = builtins.genList (i: same (builtins.elemAt rendered i) (builtins.elemAt reference i))'
            ' (builtins.length reference);\n'
            '  exact = map (i: builtins.elemAt rendered i) [ %s ];\n'
            '}\n') % ('\n'.join('    (%s)' % r for r in rendered), ' '.join(str(i) for i in exact))
    path = nix.write('batch.nix', text)
    problem = nix.parse_error(path)
    if problem:
        _fail_on_first_bad_value(nix, values, problem)
    result = nix.eval_json(path)
    different = [values[i] for i, ok in enumerate(result['same']) if not ok]
    assert different == []
    assert result['exact'] == [values[i] for i in exact]


def _fail_on_first_bad_value(nix, values, problem):
    for value in values:
        error = nix.parse_error(nix.write('one.nix', to_nix(value)))
        assert error is None, 'value %r rendered as %r does not parse: %s' % (value, to_nix(value), error)
    pytest.fail('the batch does not parse: %s' % problem)


def _json_exact(value):
    if isinstance(value, float):
        return False
    if isinstance(value, list):
        return all(_json_exact(item) for item in value)
    if isinstance(value, dict):
        return (not set(value) & {'outPath', '__toString'}
                and all(_json_exact(item) for item in value.values()))
    return True


def test_atoms():
    assert to_nix(None) == 'null'
    assert to_nix(True) == 'true'
    assert to_nix(False) == 'false'
    assert to_nix(42) == '42'
    assert to_nix(-42) == '-42'
    assert to_nix('x') == '"x"'
    assert to_nix([]) == '[ ]'
    assert to_nix({}) == '{ }'


def test_string_escapes():
    assert nix_string('a"b') == '"a\\"b"'
    assert nix_string('a\\b') == '"a\\\\b"'
    assert nix_string('${x}') == '"\\${x}"'
    assert nix_string('$x $') == '"$x $"'           # a lone $ stays
    assert nix_string('$${x}') == '"$\\${x}"'
    assert nix_string('a\nb\rc\td') == '"a\\nb\\rc\\td"'
    assert nix_string("''") == '"\'\'"'
    assert nix_string('\u00e9\U0001f600') == '"\u00e9\U0001f600"'


@pytest.mark.parametrize('bad', ['a\0b', '\ud800'])
def test_strings_nix_cannot_hold(bad):
    with pytest.raises(ValueError):
        nix_string(bad)


def test_floats_have_a_dot_and_are_exact():
    assert nix_float(0.1) == '0.1'
    assert nix_float(1e-05) == '1.0e-05'
    assert nix_float(1e16) == '1.0e+16'
    assert nix_float(-2.5) == '-2.5'
    assert nix_float(0.0) == '0.0'
    assert nix_float(5e-324) == '(builtins.fromJSON "5e-324")'
    for bad in (float('nan'), float('inf'), -float('inf')):
        with pytest.raises(ValueError):
            nix_float(bad)


def test_integer_limits():
    assert to_nix(INT_MAX) == '9223372036854775807'
    assert to_nix(INT_MIN) == '(-9223372036854775807 - 1)'
    for bad in (INT_MAX + 1, INT_MIN - 1):
        with pytest.raises(ValueError):
            to_nix(bad)


def test_lists_parenthesise_what_is_not_atomic():
    assert to_nix([1, -1, 0.5, -0.5, 'a', None, [2], {}]) == '[ 1 (-1) 0.5 (-0.5) "a" null [ 2 ] { } ]'
    assert to_nix([INT_MIN]) == '[ (-9223372036854775807 - 1) ]'


def test_dicts_quote_names_that_are_not_identifiers():
    assert to_nix({'a': 1, "b_c'-d": 2, 'a.b': 3, 'a b': 4, 'if': 5, 'or': 6, '1x': 7, '': 8, '${x}': 9}) == (
        '{\n'
        '  a = 1;\n'
        "  b_c'-d = 2;\n"
        '  "a.b" = 3;\n'
        '  "a b" = 4;\n'
        '  "if" = 5;\n'
        '  "or" = 6;\n'
        '  "1x" = 7;\n'
        '  "" = 8;\n'
        '  "\\${x}" = 9;\n'
        '}')


def test_nesting_is_indented_and_keeps_order():
    assert to_nix({'z': {'b': [1, {'c': True}], 'a': None}}, indent=2) == (
        '{\n'
        '    z = {\n'
        '      b = [\n'
        '        1\n'
        '        {\n'
        '          c = true;\n'
        '        }\n'
        '      ];\n'
        '      a = null;\n'
        '    };\n'
        '  }')


def test_attribute_names():
    assert attr_name('services') == 'services'
    assert attr_name("x_y'-1") == "x_y'-1"
    assert attr_name('with') == '"with"'
    assert attr_name('a.b') == '"a.b"'
    assert attr_name('${x}') == '"\\${x}"'
    with pytest.raises(ValueError):
        attr_name(1)


def test_typed_markers():
    assert to_nix({'_nix_path': '/etc/nixos/web.nix'}) == '/etc/nixos/web.nix'
    assert to_nix({'_nix_package': 'hello'}) == 'pkgs.hello'
    assert to_nix([{'_nix_package': 'python3Packages.requests'}]) == '[ pkgs.python3Packages.requests ]'
    # Only a one-key dict is a marker.
    assert to_nix({'_nix_path': '/x', 'other': 1}) == '{\n  _nix_path = "/x";\n  other = 1;\n}'


@pytest.mark.parametrize('marker', [
    {'_nix_path': 'relative/path'}, {'_nix_path': '/a/../b'}, {'_nix_path': '/a/./b'},
    {'_nix_path': '/a/'}, {'_nix_path': '/'}, {'_nix_path': '/a b'}, {'_nix_path': '/a${x}'},
    {'_nix_path': '/a//b'}, {'_nix_path': 3}, {'_nix_package': 'a.b c'}, {'_nix_package': 'if'},
    {'_nix_package': 'foo; x = 1'}, {'_nix_package': ''}, {'_nix_package': 'a..b'},
    {'_nix_package': ['hello']},
])
def test_bad_markers_are_refused(marker):
    with pytest.raises(ValueError):
        to_nix(marker)


@pytest.mark.parametrize('value', [set([1]), b'bytes', object(), {1: 'a'}, float('nan'), [complex(1, 1)]])
def test_non_data_is_refused(value):
    with pytest.raises(ValueError):
        to_nix(value)


def test_markers_evaluate_to_a_path_and_a_selection(nix):
    packages = to_nix([{'_nix_package': 'hello'}, {'_nix_package': 'python3Packages.requests'}])
    path = nix.write('m.nix', 'let pkgs = { hello = "HELLO"; python3Packages.requests = 7; }; in '
                     '[ (builtins.typeOf %s) %s ]' % (to_nix({'_nix_path': '/etc/x.nix'}), packages))
    assert nix.eval_json(path) == ['path', ['HELLO', 7]]


def test_hostile_values_and_names_round_trip(nix):
    values = list(HOSTILE_STRINGS)
    values.append(dict((s, s) for s in HOSTILE_STRINGS))
    values.append([dict(a=s) for s in HOSTILE_STRINGS])
    values.extend([0.1, 1e-05, 1.5e300, -0.0, 5e-324, 2.2250738585072014e-308, 123456789.123,
                   INT_MAX, INT_MIN, -1, [-1.5, [-2]], {'x': -3}])
    check_round_trip(nix, values)


JSON_SCALARS = (st.none() | st.booleans() | st.integers(INT_MIN, INT_MAX)
                | st.floats(allow_nan=False, allow_infinity=False)
                | st.text(st.characters(blacklist_categories=('Cs',), blacklist_characters='\0'))
                | st.sampled_from(HOSTILE_STRINGS))
KEYS = (st.text(st.characters(blacklist_categories=('Cs',), blacklist_characters='\0'), max_size=8)
        | st.sampled_from(HOSTILE_STRINGS))
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(KEYS, inner, max_size=4), max_leaves=12)


def collect(strategy, count):
    """``count`` examples of ``strategy``, drawn by hypothesis, for one batched nix call."""
    examples = []

    @settings(max_examples=count, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def draw(value):
        examples.append(value)
    draw()
    return examples


def test_any_json_data_parses_and_evaluates_back(nix):
    values = collect(JSON_VALUES, 400)
    assert len(values) >= 200
    check_round_trip(nix, values)
    assert nix.calls == 2           # one --parse and one --eval for the whole batch


SETTINGS = st.recursive(JSON_SCALARS, lambda inner: st.dictionaries(KEYS, inner, min_size=1, max_size=4),
                        max_leaves=10).filter(lambda value: isinstance(value, dict))


def test_hostile_settings_never_add_an_attribute(nix):
    """Each settings dict, spliced as module body lines, evaluates to exactly itself."""
    all_settings = collect(SETTINGS, 300)
    all_settings.append(dict((s, {s: s}) for s in HOSTILE_STRINGS))
    assert len(all_settings) >= 200
    bodies = ['    {\n      %s\n    }' % render_settings_body(s, indent=6) for s in all_settings]
    nix.write('same.nix', NIX_SAME)
    nix.write('reference.json', json.dumps(all_settings))
    path = nix.write('settings.nix', (
        'let\n  same = import ./same.nix;\n'
        '  reference = builtins.fromJSON (builtins.readFile ./reference.json);\n'
        '  bodies = [\n%s\n  ];\nin builtins.genList (i: same (builtins.elemAt bodies i) '
        '(builtins.elemAt reference i)) (builtins.length reference)\n') % '\n'.join(bodies))
    assert nix.parse_error(path) is None
    result = nix.eval_json(path)
    assert [s for s, ok in zip(all_settings, result) if not ok] == []


def test_settings_body_uses_dotted_paths():
    body = render_settings_body({'services': {'nginx': {'enable': True, 'virtualHosts': {
        'a.example': {'root': '/srv'}}}}, 'networking.x': 1, 'boot': {}})
    assert body == ('services.nginx.enable = true;\n'
                    '  services.nginx.virtualHosts."a.example".root = "/srv";\n'
                    '  "networking.x" = 1;\n'
                    '  boot = { };')
    assert render_settings_body({}) == ''
    with pytest.raises(ValueError):
        render_settings_body(['not', 'a', 'dict'])


def test_settings_merge_with_the_template_lines(nix):
    text = render_configuration_nix('web', extra=render_settings_body(
        {'networking': {'firewall': {'allowedTCPPorts': [80, 443]}}, 'services': {'nginx': {'enable': True}}}))
    path = nix.write('configuration.nix', text)
    assert nix.parse_error(path) is None
    evaluated = nix.eval_json(nix.write('eval.nix', 'import ./configuration.nix { config = {}; pkgs = {}; '
                                        'lib.mkDefault = x: x; }'))
    assert evaluated == {'boot': {'isNspawnContainer': True},
                         'networking': {'hostName': 'web', 'useDHCP': False,
                                        'firewall': {'allowedTCPPorts': [80, 443]}},
                         'services': {'nginx': {'enable': True}}}


# configuration.nix of an imperative container (facts §2.4)

TEMPLATE_EMPTY = (
    '{ config, lib, pkgs, ... }:\n'
    '\n'
    '{ boot.isNspawnContainer = true;\n'
    '  networking.hostName = lib.mkDefault "web";\n'
    '  networking.useDHCP = false;\n'
    '  \n'
    '}\n'
)


def test_configuration_nix_is_the_cli_template():
    assert render_configuration_nix('web') == TEMPLATE_EMPTY
    assert render_configuration_nix('web', extra='services.nginx.enable = true;') == \
        TEMPLATE_EMPTY.replace('  \n}', '  services.nginx.enable = true;\n}')
    assert render_configuration_nix('web', config_file='/etc/nixos/web.nix') == \
        TEMPLATE_EMPTY.replace('  \n}', '  imports = [ /etc/nixos/web.nix ];\n}')


def test_configuration_nix_option_errors():
    with pytest.raises(ValueError) as error:
        render_configuration_nix('web', extra='x = 1;', config_file='/a.nix')
    assert 'config_file' in str(error.value)
    with pytest.raises(ValueError) as error:
        render_configuration_nix('web', config_file='relative.nix')
    assert 'config_file' in str(error.value)


@pytest.mark.parametrize('extra', [None, '', 'services.nginx.enable = true;',
                                   'a = 1;\n  b = {\n    c = "}\n";\n  };\n', '\n}\n', '  '])
def test_extract_is_the_inverse(extra):
    text = render_configuration_nix('db-1', extra=extra)
    assert extract_extra_config(text, 'db-1') == (extra or '')


def test_extract_config_file_variant_and_older_scripts():
    assert extract_extra_config(render_configuration_nix('web', config_file='/x/y.nix'), 'web') == \
        'imports = [ /x/y.nix ];'
    older = TEMPLATE_EMPTY.replace('isNspawnContainer', 'isContainer').replace('  \n}', '  a = 1;\n}')
    assert extract_extra_config(older, 'web') == 'a = 1;'
    oldest = older.replace('lib.mkDefault', 'mkDefault').replace(':\n\n{', ':\n\nwith lib;\n\n{')
    assert extract_extra_config(oldest, 'web') == 'a = 1;'


@pytest.mark.parametrize('text', [
    TEMPLATE_EMPTY.replace('useDHCP = false', 'useDHCP = true'),      # edited by hand
    TEMPLATE_EMPTY.replace('"web"', '"other"'),                     # another container's
    TEMPLATE_EMPTY[:-1],                                            # no final newline
    TEMPLATE_EMPTY + '# trailing comment\n',
    '{ ... }: { }\n',
    '',
])
def test_extract_refuses_files_that_do_not_follow_the_template(text):
    assert extract_extra_config(text, 'web') is None


def test_rendered_configurations_parse(nix):
    for extra in ('', 'services.nginx.enable = true;',
                  render_settings_body({'environment': {'etc': {'motd': {'text': '${x} "hi"\n'}}}})):
        path = nix.write('c.nix', render_configuration_nix('web', extra=extra))
        assert nix.parse_error(path) is None


def test_nix_parse_error_with_the_real_parser(run):
    assert NIX_PARSE_ARGV == ['nix-instantiate', '--store', 'dummy://', '--parse', '-']
    assert nix_parse_error(render_configuration_nix('web', extra='services.nginx.enable = true;'), run) is None
    message = nix_parse_error(render_configuration_nix('web', extra='services.nginx.enable = ;'), run)
    assert message is not None and 'syntax error' in message
    message = nix_parse_error(render_configuration_nix('web', extra='networking.hostName = "x";'), run)
    assert message is not None and 'already defined' in message


def test_nix_parse_error_passes_text_on_stdin():
    calls = []

    def fake_run(argv, data=None):
        calls.append((argv, data))
        return 1, '', ''
    assert nix_parse_error('{', fake_run) == 'nix-instantiate --parse failed with exit status 1'
    assert calls == [(NIX_PARSE_ARGV, '{')]


def test_float_literals_read_back_exactly(nix):
    samples = [0.1, 1e-05, 1e16, 1.7976931348623157e308, 2.2250738585072014e-308, 5e-324,
               math.pi, -math.e, 123456789.123, 0.30000000000000004]
    check_round_trip(nix, samples)


@pytest.mark.parametrize('settings_dict, names', [
    ({'a': '"; injected = true; b = "'}, ['a']),
    ({'a': '${throw "evaluated"}'}, ['a']),
    ({'a': "'' + (throw \"x\") + ''"}, ['a']),
    ({'x = 1; y': 1}, ['x = 1; y']),
    ({'a.injected': True}, ['a.injected']),
    ({'a': {'b"; injected = true; "c': 1}}, ['a']),
])
def test_injection_attempts_stay_data(nix, settings_dict, names):
    path = nix.write('s.nix', '{\n  %s\n}\n' % render_settings_body(settings_dict))
    assert nix.eval_json(nix.write('names.nix', 'builtins.attrNames (import ./s.nix)')) == names
    assert nix.eval_json(path) == settings_dict


@pytest.mark.parametrize('body', ['} { ', 'a = 1; } // import /etc/passwd // {', '} // {'])
def test_text_that_closes_the_template_braces_is_refused(run, body):
    from ansible_collections.nixfleet.containers.plugins.module_utils._nix import nix_attrset_body_error
    assert 'not the body of one attribute set' in nix_attrset_body_error(body, run)


@pytest.mark.parametrize('body', ['', 'services.nginx.enable = true;', 'a = { b = 1; }; c = [ 1 2 ];',
                                  'imports = [ /etc/x.nix ];',
                                  # the guest module's arguments (containers-ephemeral's guest uses pkgs)
                                  'root = pkgs.runCommand "localhost" {} "mkdir $out";',
                                  'x = lib.mkDefault config.networking.hostName;'])
def test_real_bodies_pass(run, body):
    from ansible_collections.nixfleet.containers.plugins.module_utils._nix import nix_attrset_body_error
    assert nix_attrset_body_error(body, run) is None


@pytest.mark.parametrize('body', ['} { ', 'a = 1; } // import /etc/passwd // {', '} // {', '} rec { '])
def test_one_parse_refuses_text_that_closes_the_template_braces(run, body):
    from ansible_collections.nixfleet.containers.plugins.module_utils._nix import nix_configuration_error
    calls = []

    def counted(argv, data=None):
        calls.append(argv)
        return run(argv, data=data)
    message = nix_configuration_error(render_configuration_nix('web', extra=body), body, counted)
    assert message.startswith('the text is not the body of one attribute set') and len(calls) == 1


@pytest.mark.parametrize('body', ['', 'services.nginx.enable = true;', 'a = { b = 1; }; c = [ 1 2 ];',
                                  'imports = [ /etc/x.nix ];', 'x = "}";  # }'])
def test_one_parse_passes_real_bodies(run, body):
    from ansible_collections.nixfleet.containers.plugins.module_utils._nix import nix_configuration_error
    calls = []

    def counted(argv, data=None):
        calls.append(argv)
        return run(argv, data=data)
    assert nix_configuration_error(render_configuration_nix('web', extra=body), body, counted) is None
    assert len(calls) == 1


def test_one_parse_reports_syntax_errors_and_falls_back_on_unknown_output(run):
    from ansible_collections.nixfleet.containers.plugins.module_utils._nix import nix_configuration_error
    message = nix_configuration_error(render_configuration_nix('web', extra='a = ;'), 'a = ;', run)
    assert 'syntax error' in message
    calls = []

    def other_printer(argv, data=None):
        calls.append(data)
        return (0, 'printed differently', '') if len(calls) == 1 else run(argv, data=data)
    body = '} // {'
    assert 'not the body of one attribute set' in nix_configuration_error(
        render_configuration_nix('web', extra=body), body, other_printer)
    assert calls[1] == '{ config, lib, pkgs, ... }: {\n} // {\n}'
