"""Fixtures shared by the scenarios' testinfra tests (pytest loads this file for every
<scenario>/tests/ below it). Molecule runs them with MOLECULE_EPHEMERAL_DIRECTORY set: it holds
`lab` (a link to the lab's state dir, made by shared/create.yml) and the fleet summaries the
converge playbooks write. docs/molecule.md has the picture.
"""

import json
import os

import pytest
import testinfra


def ephemeral_path(*parts):
    return os.path.join(os.environ['MOLECULE_EPHEMERAL_DIRECTORY'], *parts)


@pytest.fixture(scope='session')
def lab_host():
    """lab_host('host2'): a testinfra host of the lab by inventory name (ssh, as --hosts does)."""
    hosts = {}

    def get(name):
        if name not in hosts:
            hosts[name] = testinfra.get_host('ansible://' + name,
                                             ansible_inventory=ephemeral_path('lab', 'inventory.yml'))
        return hosts[name]
    return get


@pytest.fixture(scope='session')
def controller():
    """The machine Molecule runs on (the lab's root namespace)."""
    return testinfra.get_host('local://')


@pytest.fixture(scope='session')
def outside_netns():
    """The lab's stand-in for the internet (docs/lab.md): answers `client=<source address>`."""
    return 'nfl%s-out' % (os.environ.get('NIXFLEET_LAB_ID') or '0')


@pytest.fixture(scope='session')
def summary():
    """summary('fleet-summary.json'): a summary JSON a converge playbook wrote on the controller."""
    def read(name='fleet-summary.json'):
        with open(ephemeral_path(name), encoding='utf-8') as stream:
            return json.load(stream)
    return read


@pytest.fixture(scope='session')
def conf():
    """conf(host, 'web'): /etc/nixos-containers/web.conf as a dict (one KEY=value a line)."""
    def read(host, name):
        text = host.file('/etc/nixos-containers/%s.conf' % name).content_string
        return dict(line.split('=', 1) for line in text.splitlines() if line)
    return read


@pytest.fixture(scope='session')
def http_get():
    """http_get(host, address, port=80): the body of GET http://address:port/ made on HOST."""
    def get(host, address, port=80):
        return host.run('curl -s -m 3 %s', 'http://%s:%d/' % (address, port)).stdout.strip()
    return get
