"""The collection in an execution environment (ansible-builder): what meta/execution-environment.yml
brings in, and the build context `make ee` creates (no container engine: the image build is not run,
but its galaxy stage and its dependency introspection are, with the context's own files).

An EE must get the collection's Python requirements (requirements.txt) and the default profile
of bindep.txt (the controller's packages), never the lab's and the tests' packages ([test]).
The system packages are judged by bindep itself, as the image build does (`bindep -l newline`).
"""

import functools
import hashlib
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[3]
DIST = REPO / '.build' / 'dist'
EE_CONTEXT = REPO / '.build' / 'ee' / 'context'
COLLECTION = 'nixfleet.containers'
# Packages the lab cannot work without; none may reach an EE.
LAB_PACKAGES = {'nftables', 'nix-bin', 'openssh-server', 'systemd-container', 'busybox-static'}


def tool(name):
    return str(Path(sys.executable).parent / name)


def run(argv, **kwargs):
    result = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False, **kwargs)
    output = result.stdout[-3000:] + result.stderr[-3000:]
    assert result.returncode == 0, '%s: exit %d\n%s' % (argv, result.returncode, output)
    return result


def make(target):
    return run(['make', '--no-print-directory', '-C', str(REPO), target])


def bindep_list(bindep_file, *profiles):
    """The packages bindep selects on this (Debian) machine for PROFILES (none: the default)."""
    return set(run([tool('bindep'), '-f', str(bindep_file), '-l', 'newline', *profiles]).stdout.split())


def requirement_names(path):
    names = set()
    for line in Path(path).read_text(encoding='utf-8').splitlines():
        line = line.split('#', 1)[0].strip()
        if line:
            names.add(Requirement(line).name.lower())
    return names


@functools.lru_cache(maxsize=None)
def lab_only_packages():
    """The repository's [test] packages that the default profile does not have."""
    lab_only = bindep_list(REPO / 'bindep.txt', 'test') - bindep_list(REPO / 'bindep.txt')
    # The profiles are really there: `make deps` gets the lab's packages from the test profile.
    assert LAB_PACKAGES <= lab_only
    return lab_only


def check_introspection(pip_file, bindep_file):
    """The introspected requirements: every Python requirement, no lab-only system package."""
    pip_lines = Path(pip_file).read_text(encoding='utf-8').splitlines()
    assert requirement_names(REPO / 'requirements.txt') <= requirement_names(pip_file), pip_lines
    assert all('# from collection %s' % COLLECTION in line for line in pip_lines if line.strip())
    ee_packages = bindep_list(bindep_file)
    assert 'openssh-client' in ee_packages
    assert not ee_packages & lab_only_packages(), ee_packages


def test_make_deps_installs_what_bindep_selects_for_the_test_profile():
    """tools/install-system-deps (plain bash: it runs before the venv exists) agrees with bindep."""
    result = run(['bash', str(REPO / 'tools' / 'install-system-deps'), '--list'])
    assert set(result.stdout.split()) == bindep_list(REPO / 'bindep.txt', 'test')


@pytest.fixture(scope='module')
def artifact():
    """`make artifact`: the built collection (from a clean copy of the tree)."""
    make('artifact')
    artifacts = sorted(DIST.glob('nixfleet-containers-*.tar.gz'))
    assert len(artifacts) == 1, artifacts
    return artifacts[0]


def test_introspect_of_the_installed_artifact_lists_the_python_requirements_and_no_lab_package(artifact, tmp_path):
    collections = tmp_path / 'collections'
    run([tool('ansible-galaxy'), 'collection', 'install', '--offline', '-p', str(collections), str(artifact)],
        env={'PATH': str(Path(sys.executable).parent) + ':/usr/bin:/bin',
             'ANSIBLE_COLLECTIONS_PATH': str(collections), 'HOME': str(tmp_path)})
    installed = collections / 'ansible_collections' / 'nixfleet' / 'containers'
    assert yaml.safe_load((installed / 'meta' / 'execution-environment.yml').read_text())['dependencies'] == {
        'python': 'requirements.txt', 'system': 'bindep.txt'}

    result = run([tool('ansible-builder'), 'introspect', str(collections),
                  '--write-pip', str(tmp_path / 'pip.txt'), '--write-bindep', str(tmp_path / 'bindep.txt')])
    assert 'nixfleet.containers' in result.stdout
    check_introspection(tmp_path / 'pip.txt', tmp_path / 'bindep.txt')


def test_make_ee_creates_a_build_context_whose_galaxy_stage_installs_the_artifact(artifact, tmp_path):
    make('ee')
    definition = yaml.safe_load((REPO / 'tools' / 'ee' / 'execution-environment.yml').read_text())
    assert definition['version'] == 3
    containerfile = (EE_CONTEXT / 'Containerfile').read_text()
    assert 'ARG EE_BASE_IMAGE="%s"' % definition['images']['base_image']['name'] in containerfile
    assert 'ansible-core>=2.18,<2.20' in containerfile and 'ansible-runner' in containerfile
    assert 'ansible-galaxy collection install $ANSIBLE_GALAXY_CLI_COLLECTION_OPTS -r requirements.yml' in containerfile
    assert 'introspect.py introspect' in containerfile

    # The context carries the artifact that `make ee` built (.build/dist), as the galaxy
    # stage's requirements.yml names it.
    build = EE_CONTEXT / '_build'
    shipped = build / 'collections' / 'nixfleet-containers.tar.gz'
    with tarfile.open(shipped) as tar:
        manifest = json.load(tar.extractfile('MANIFEST.json'))['collection_info']
        names = tar.getnames()
    galaxy = yaml.safe_load((REPO / 'galaxy.yml').read_text())
    assert (manifest['namespace'], manifest['name'], manifest['version']) == (
        galaxy['namespace'], galaxy['name'], galaxy['version'])
    assert 'meta/execution-environment.yml' in names and 'bindep.txt' in names
    assert not any(name.startswith(('tests/lab', '.lab', 'tools/')) for name in names)
    assert yaml.safe_load((build / 'requirements.yml').read_text())['collections'] == [
        {'name': 'collections/nixfleet-containers.tar.gz', 'type': 'file'}]
    assert hashlib.sha256(shipped.read_bytes()).hexdigest() == hashlib.sha256(
        next(DIST.glob('nixfleet-containers-*.tar.gz')).read_bytes()).hexdigest()

    # The image's galaxy stage, without the image: in /build (here: _build), install from
    # the context's requirements.yml; then the builder stage's introspection, with the
    # context's own introspect.py, over what was installed.
    collections = tmp_path / 'usr-share-ansible' / 'collections'
    run([tool('ansible-galaxy'), 'collection', 'install', '--offline', '-r', 'requirements.yml',
         '--collections-path', str(collections)], cwd=build,
        env={'PATH': str(Path(sys.executable).parent) + ':/usr/bin:/bin', 'HOME': str(tmp_path),
             'ANSIBLE_COLLECTIONS_PATH': str(collections)})
    assert (collections / 'ansible_collections' / 'nixfleet' / 'containers' / 'MANIFEST.json').is_file()
    run([sys.executable, str(build / 'scripts' / 'introspect.py'), 'introspect', str(collections),
         '--write-pip', str(tmp_path / 'pip.txt'), '--write-bindep', str(tmp_path / 'bindep.txt')])
    check_introspection(tmp_path / 'pip.txt', tmp_path / 'bindep.txt')
