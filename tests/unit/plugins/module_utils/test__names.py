# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.nixfleet.containers.plugins.module_utils._names import (
    IFNAMSIZ_MAX,
    MAX_NAME_LENGTH,
    compare_versions,
    container_name_error,
    declarative_max_length,
    host_interface_name,
    interface_name_error,
)


def test_limits_are_the_facts():
    assert MAX_NAME_LENGTH == 11
    assert IFNAMSIZ_MAX == 15


@pytest.mark.parametrize('name', ['a', 'web', 'Web-01', '0', 'a-b-c', 'x' * 11, 'abcdefghij1'])
def test_valid_names(name):
    assert container_name_error(name) is None


@pytest.mark.parametrize('name, words', [
    ('', ['empty']),
    ('a_b', ['"_"', 'machined', 'declarative']),
    ('a.b', ['letters, digits and "-"']),
    ('a b', ['letters, digits and "-"']),
    ('caf\u00e9', ['letters, digits and "-"']),
    ('-web', ['start with "-"', 'option']),
    ('abcdefghijkl', ['12 characters', 'at most 11', 've-abcdefghijkl', '15-byte']),
    ('web\n', ['letters, digits']),
])
def test_invalid_names_say_why(name, words):
    message = container_name_error(name)
    assert message is not None
    for word in words:
        assert word in message


def test_non_string_name():
    assert 'must be a string' in container_name_error(12)


def test_longest_name_fits_the_interface_limit():
    name = 'a' * MAX_NAME_LENGTH
    assert interface_name_error(host_interface_name(name)) is None
    assert interface_name_error(host_interface_name(name + 'bc')) is not None


def test_host_interface_name():
    assert host_interface_name('web') == 've-web'
    assert host_interface_name('web', bridged=True) == 'vb-web'


@pytest.mark.parametrize('ifname', ['eth0', 'br0', 'x' * 15, 've-abcdefghijk', 'w\u00fcrm', 'a.b', 'a-b_c@d'])
def test_valid_interface_names(ifname):
    assert interface_name_error(ifname) is None


@pytest.mark.parametrize('ifname, word', [
    ('', 'empty'),
    ('.', 'not allowed'),
    ('..', 'not allowed'),
    ('x' * 16, '16 bytes'),
    ('\u00fc' * 8, '16 bytes'),       # 8 characters, but 16 bytes in UTF-8
    ('a/b', "'/'"),
    ('a:b', "':'"),
    ('a b', "' '"),
    ('a\tb', "'\\t'"),
])
def test_invalid_interface_names(ifname, word):
    message = interface_name_error(ifname)
    assert message is not None and word in message


@pytest.mark.parametrize('left, right, order', [
    ('5.8', '5.8', 0), ('5.8.0', '5.8', 1), ('5.7.19', '5.8', -1), ('5.10', '5.8', 1),
    ('6.18.0-1-amd64', '5.8', 1), ('5.8-rc1', '5.8', 1), ('5.8pre1', '5.8', -1), ('2.3a', '2.3', 1),
])
def test_compare_versions_orders_as_nix(left, right, order):
    assert compare_versions(left, right) == order
    assert -compare_versions(right, left) == order


def test_declarative_limit():
    assert declarative_max_length(True, '5.4.0') == MAX_NAME_LENGTH
    assert declarative_max_length(True, '6.1.0') == 64
    assert declarative_max_length(False, '5.4.0') == 64
    assert container_name_error('really-long-name') is not None          # the CLI's limit stays
    assert container_name_error('really-long-name', declarative_max_length(True, '6.18')) is None
