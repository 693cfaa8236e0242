# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The to_nix filter: the modules' renderer behind Ansible's filter interface.

The property test draws its values with hypothesis and checks them all with two nix calls:
every rendered value must parse and evaluate back to the very data it came from.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
from collections import OrderedDict

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.nixfleet.containers.plugins.filter.to_nix import FilterModule, to_nix
from ansible_collections.nixfleet.containers.plugins.module_utils import _nix
from ansible_collections.nixfleet.containers.tests.unit.plugins.module_utils.test__nix import (
    HOSTILE_STRINGS,
    JSON_VALUES,
    NIX_SAME,
    collect,
)


def batch_round_trip(nix, values, indent=4):
    """Render every value through the filter into one file; one --parse, one --eval."""
    nix.write('same.nix', NIX_SAME)
    nix.write('reference.json', json.dumps(values))
    rendered = '\n'.join('    (%s)' % to_nix(value, indent) for value in values)
    path = nix.write('batch.nix', (
        'let\n  same = import ./same.nix;\n'
        '  reference = builtins.fromJSON (builtins.readFile ./reference.json);\n'
        '  rendered = [\n%s\n  ];\n'
        'in builtins.genList (i: same (builtins.elemAt rendered i) (builtins.elemAt reference i))'
        ' (builtins.length reference)\n') % rendered)
    problem = nix.parse_error(path)
    assert problem is None, problem
    result = nix.eval_json(path)
    assert len(result) == len(values)
    return [value for value, ok in zip(values, result) if not ok]


def test_the_filter_is_registered_under_its_name():
    assert FilterModule().filters() == {'to_nix': to_nix}


def test_the_filter_is_the_modules_renderer():
    value = {'services': {'nginx': {'enable': True}}, 'a.b': [1, -2, 0.5, None, '${x}"\\\n'],
             'p': {'_nix_path': '/etc/nixos/x.nix'}, 'k': [{'_nix_package': 'python3Packages.requests'}]}
    assert to_nix(value) == _nix.to_nix(value)
    assert to_nix(value, 6) == _nix.to_nix(value, 6)


def test_mappings_sequences_and_string_subclasses_render_as_plain_data():
    class Tagged(str):
        """Stands in for Ansible's tagged and unsafe string types."""

    value = OrderedDict([(Tagged('z'), (1, Tagged('${a}'))), ('a', range(2))])
    assert to_nix(value) == '{\n  z = [ 1 "\\${a}" ];\n  a = [ 0 1 ];\n}'


@pytest.mark.parametrize('bad, words', [
    (float('nan'), 'NaN'), ({'a': b'bytes'}, 'bytes'), ('a\0b', 'NUL'), (2 ** 63, '64-bit'),
    ({1: 'x'}, 'attribute names'), ({'_nix_path': 'relative'}, 'absolute'),
    ({'_nix_package': 'a; b'}, 'identifiers'), ({1, 2}, 'set'),
])
def test_what_nix_cannot_hold_fails_as_a_filter_error(bad, words):
    with pytest.raises(AnsibleFilterError) as error:
        to_nix(bad)
    assert str(error.value).startswith('to_nix: ')
    assert words.lower() in str(error.value).lower()


@pytest.mark.parametrize('indent', [-1, '2', 1.5, True, None])
def test_indent_must_be_a_count_of_spaces(indent):
    with pytest.raises(AnsibleFilterError) as error:
        to_nix({'a': 1}, indent)
    assert 'indent' in str(error.value)


def test_hostile_strings_and_names_round_trip(nix):
    values = list(HOSTILE_STRINGS) + [dict((s, [s, {s: s}]) for s in HOSTILE_STRINGS)]
    assert batch_round_trip(nix, values) == []
    assert nix.calls == 2


def test_any_data_parses_and_evaluates_back_through_the_filter(nix):
    values = collect(JSON_VALUES, 300)
    assert len(values) >= 200
    for indent in (0, 7):
        assert batch_round_trip(nix, values, indent) == []
    assert nix.calls == 4           # one --parse and one --eval per batch
