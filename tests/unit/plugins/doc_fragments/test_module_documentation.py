# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The modules' documentation as Ansible shows it (doc fragments merged) against their argument specs.

These tests need the controller side of Ansible (``ansible.utils.plugin_docs``), which ansible-test
does not offer to module_utils unit tests; so they live here.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import importlib

import yaml
from ansible.utils import plugin_docs

from ansible_collections.nixfleet.containers.plugins.module_utils._declarative import declarative_argument_spec
from ansible_collections.nixfleet.containers.plugins.modules import (
    nixos_container,
    nixos_container_declarative,
    nixos_containers,
)


class _CollectionFragments(object):
    """The doc-fragment loader Ansible uses, reduced to this collection's fragments."""

    PREFIX = 'nixfleet.containers.'

    def get(self, name):
        if not name.startswith(self.PREFIX):
            return None
        try:
            module = importlib.import_module('ansible_collections.nixfleet.containers.plugins.doc_fragments.'
                                             + name[len(self.PREFIX):])
        except ImportError:
            return None
        fragment = module.ModuleDocFragment
        fragment.ansible_name = name
        return fragment


def module_documentation(module):
    """A module's DOCUMENTATION with its doc fragments merged in, as Ansible merges them."""
    doc = yaml.safe_load(module.DOCUMENTATION)
    plugin_docs.add_fragments(doc, module.__file__, _CollectionFragments(), is_module=True)
    return doc


def _module_options(module):
    """name -> (type, default, choices, required, elements, suboptions) of a module's documentation."""
    def walk(options):
        return dict((name, (o.get('type', 'str'), o.get('default'), o.get('choices'), o.get('required', False),
                            o.get('elements'), walk(o.get('suboptions', {}))))
                    for name, o in options.items())
    return walk(module_documentation(module)['options'])


def test_the_plural_docs_describe_the_same_options_as_the_single_module():
    single = _module_options(nixos_container)
    # The binary is per host: a top-level option of both modules (the _nixos fragment).
    assert single.pop('nixos_container_bin') == _module_options(nixos_containers)['nixos_container_bin']
    plural = _module_options(nixos_containers)['containers'][5]
    assert plural == single


def _doc_options(options):
    return dict((name, (o.get('type', 'str'), o.get('default'), o.get('choices'), o.get('required', False),
                        o.get('elements'), _doc_options(o.get('suboptions', {}))))
                for name, o in options.items())


def _spec_options(spec):
    return dict((name, (o.get('type', 'str'), o.get('default'), o.get('choices'), o.get('required', False),
                        o.get('elements'), _spec_options(o.get('options', {}))))
                for name, o in spec.items())


def test_documentation_matches_the_argument_spec():
    doc = module_documentation(nixos_container_declarative)['options']
    assert _doc_options(doc) == _spec_options(declarative_argument_spec())
    yaml.safe_load(nixos_container_declarative.EXAMPLES)
    yaml.safe_load(nixos_container_declarative.RETURN)
