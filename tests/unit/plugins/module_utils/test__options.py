# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The option catalogue: the generated doc fragment is current, and what derives from it agrees."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import importlib.machinery
import importlib.util
import os
import re

import yaml

from ansible_collections.nixfleet.containers.plugins.doc_fragments._container_options import ModuleDocFragment
from ansible_collections.nixfleet.containers.plugins.module_utils import _options
from ansible_collections.nixfleet.containers.plugins.module_utils._conf_options import conf_from_options, options_from_conf

COLLECTION = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..', '..'))


def load_generator():
    """tools/gen-doc-fragment (an extension-less script) as a module."""
    loader = importlib.machinery.SourceFileLoader('gen_doc_fragment', os.path.join(COLLECTION, 'tools', 'gen-doc-fragment'))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(loader.name, loader))
    loader.exec_module(module)
    return module


GENERATOR = load_generator()


def test_the_committed_fragment_is_what_the_catalogue_generates():
    # Fails after a catalogue change until `tools/gen-doc-fragment` has been run.
    with open(os.path.join(COLLECTION, GENERATOR.FRAGMENT_PATH)) as f:
        committed = f.read()
    assert committed == GENERATOR.fragment_source(), 'run tools/gen-doc-fragment'
    assert GENERATOR.main(['gen-doc-fragment', '--check']) == 0


def test_the_check_fails_on_a_stale_fragment(tmp_path, monkeypatch):
    (tmp_path / 'plugins' / 'doc_fragments').mkdir(parents=True)
    (tmp_path / GENERATOR.FRAGMENT_PATH).write_text(GENERATOR.fragment_source().replace('Name of the', 'Nom du'))
    monkeypatch.setattr(GENERATOR, 'REPO', str(tmp_path))
    assert GENERATOR.main(['gen-doc-fragment', '--check']) == 1
    assert GENERATOR.main(['gen-doc-fragment']) == 0
    assert GENERATOR.main(['gen-doc-fragment', '--check']) == 0
    assert (tmp_path / GENERATOR.FRAGMENT_PATH).read_text() == GENERATOR.fragment_source()


def _documented(attribute, mode):
    options = yaml.safe_load(getattr(ModuleDocFragment, attribute))['options']
    return options['containers']['suboptions'] if mode == _options.SET else options


def test_the_fragment_says_what_the_catalogue_says():
    for attribute, mode in (('DOCUMENTATION', _options.SINGLE), ('SET', _options.SET),
                            ('DECLARATIVE', _options.DECLARATIVE)):
        documented = _documented(attribute, mode)
        assert list(documented) == [o.name for o in _options.options_of(mode)]
        for option in _options.options_of(mode):
            doc = option.doc_declarative if mode == _options.DECLARATIVE and option.doc_declarative else option.doc
            if mode == _options.SET:
                # Within containers[], an option is referred to by its full path.
                doc = [re.sub(r'O\(([a-z_]+)', r'O(containers[].\1', text) for text in doc]
            assert documented[option.name]['description'] == doc, (attribute, option.name)
            spec = option.spec()
            assert documented[option.name]['type'] == spec['type']
            assert documented[option.name].get('default') == spec.get('default'), option.name
            assert documented[option.name].get('choices') == spec.get('choices'), option.name


def test_every_module_option_is_documented_once_in_the_catalogue():
    for mode in (_options.SINGLE, _options.SET, _options.DECLARATIVE, _options.FLEET):
        names = [o.name for o in _options.options_of(mode)]
        assert len(names) == len(set(names)), mode
        if mode != _options.FLEET:
            assert all(o.doc for o in _options.options_of(mode)), mode


def test_the_schema_and_the_argument_specs_come_from_the_same_records():
    fleet = _options.fleet_properties()
    assert set(fleet) == set(_options.argument_spec(_options.SET)) - {'restart', 'recreate', 'rollback'}
    assert all(fleet.values())


def test_conf_keys_name_their_options_and_round_trip():
    # Every key an option owns is written by conf_from_options and read back by options_from_conf.
    given = dict(host_address='10.233.1.1', local_address='10.233.1.2', host_address6='fc00::1',
                 local_address6='fc00::2', local_mac_address='02:00:00:00:00:01', host_bridge='br0',
                 private_users='pick', extra_flags=['--x'], flake='/srv/f', flake_attr='web', auto_start=True,
                 system_path='/nix/store/x', copy_resolv_conf=True, network_namespace_path='/run/netns/n',
                 interfaces=['eth1'], macvlans=['eth2'], forward_ports=[dict(host_port=80)],
                 extra_veths=[dict(name='veth1', host_bridge='br1')])
    conf = conf_from_options(given)
    for key, option in _options.OPTION_FOR_KEY.items():
        assert conf.get(key), (key, option)
        assert options_from_conf(conf).get(option) not in (None, '', []), (key, option)


def test_the_planner_sets():
    assert _options.GUEST_KEYS == ('FLAKE', 'NIXFLEET_FLAKE_ATTR')
    assert {'AUTO_START', 'FLAKE'} <= _options.NOT_READ_AT_START
    assert not {'HOST_ADDRESS', 'HOST_PORT', 'EXTRA_NSPAWN_FLAGS', 'SYSTEM_PATH'} & _options.NOT_READ_AT_START


def test_an_option_is_named_only_by_the_catalogue_its_fragment_and_its_encoding():
    # Adding an option touches the catalogue and its encoding, nothing else (issue 11).
    owners = set([os.path.join('plugins', 'module_utils', '_options.py'), GENERATOR.FRAGMENT_PATH,
                  os.path.join('plugins', 'module_utils', '_conf_options.py')])
    for option in ('enable_tun', 'additional_capabilities', 'ephemeral', 'tmpfs'):
        word = re.compile(r'\b%s\b' % option)
        naming = set()
        for directory, _dirs, files in os.walk(os.path.join(COLLECTION, 'plugins')):
            for name in (n for n in files if n.endswith(('.py', '.yml', '.yaml'))):
                path = os.path.join(directory, name)
                with open(path, errors='replace') as f:
                    if word.search(f.read()):
                        naming.add(os.path.relpath(path, COLLECTION))
        assert naming <= owners, (option, sorted(naming - owners))
