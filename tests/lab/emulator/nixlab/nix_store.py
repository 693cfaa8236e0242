"""Emulated `nix-store`: what a deploy tool uses to copy a closure from one host to another.

`-qR PATH...` (`--query --requisites`): the closure of the paths (a path refers to the store paths
named in its files and symlinks, as Nix finds references); `--export PATH...`: the paths as one
stream on stdout (the lab's own format, a tar stream of the store directories, not Nix's NAR
serialisation); `--import`: a stream on stdin added to this host's store (paths already there are
kept), printing each path. With them `nix-store --export $(nix-store -qR P) | ... nix-store --import`
copies a system between lab hosts, as `nix copy` or Colmena do between real ones.
"""

import os
import re
import shutil
import sys
import tarfile
import tempfile

from nixlab import common, store

REFERENCE = re.compile(rb"/nix/store/[0-9a-df-np-sv-z]{32}-[A-Za-z0-9+._?=-]+")


def _fail(message, status=1):
    sys.stderr.write("error: %s\n" % message)
    return status


def _top(path):
    """The store path (/nix/store/HASH-NAME) a file below it belongs to."""
    parts = path.split("/")
    return "/".join(parts[:4])


def references(path):
    found = set()
    for directory, subdirs, files in os.walk(path):
        for entry in subdirs + files:
            full = os.path.join(directory, entry)
            if os.path.islink(full):
                found |= set(m.decode() for m in REFERENCE.findall(os.readlink(full).encode()))
            elif os.path.isfile(full):
                with open(full, "rb") as handle:
                    found |= set(m.decode() for m in REFERENCE.findall(handle.read()))
    return set(_top(p) for p in found) - {path}


def closure(paths):
    seen, queue = [], list(paths)
    while queue:
        path = queue.pop(0)
        if path in seen:
            continue
        if not store.is_store_dir(path):
            raise ValueError("path '%s' is not valid" % path)
        seen.append(path)
        queue += sorted(references(path))
    return seen


def export(paths):
    with tarfile.open(fileobj=sys.stdout.buffer, mode="w|") as archive:
        for path in paths:
            if not store.is_store_dir(path):
                raise ValueError("path '%s' is not valid" % path)
            archive.add(path, arcname=os.path.basename(path))


def import_stream():
    """Every store directory of the stream on stdin, each added whole or not at all."""
    os.makedirs(common.STORE_DIR, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix=".lab-import-", dir=common.STORE_DIR)
    try:
        with tarfile.open(fileobj=sys.stdin.buffer, mode="r|") as archive:
            for member in archive:
                if member.name.startswith("/") or ".." in member.name.split("/"):
                    raise ValueError("unsafe path '%s' in the stream" % member.name)
                archive.extract(member, scratch, set_attrs=False)
                if member.isfile():
                    # The mode only (a store path is read-only; its executables keep their x bit).
                    os.chmod(os.path.join(scratch, member.name), member.mode & 0o755)
        for name in sorted(os.listdir(scratch)):
            path = os.path.join(common.STORE_DIR, name)

            def fill(tmp, source=os.path.join(scratch, name)):
                os.rmdir(tmp)
                shutil.copytree(source, tmp, symlinks=True)
                os.chmod(tmp, 0o755)

            store.add_to_store(path, fill)
            sys.stdout.write(path + "\n")
    finally:
        for directory, subdirs, files in os.walk(scratch):
            os.chmod(directory, 0o755)
        shutil.rmtree(scratch, ignore_errors=True)


def main(argv):
    args = list(argv)
    try:
        if args[:1] == ["-qR"] or args[:2] == ["--query", "--requisites"]:
            paths = args[1:] if args[0] == "-qR" else args[2:]
            # A profile or any link to a store path stands for the path (Nix follows links into the store).
            for path in closure([os.path.realpath(p) for p in paths]):
                sys.stdout.write(path + "\n")
            return 0
        if args[:1] == ["--export"]:
            export([p.rstrip("/") for p in args[1:]])
            return 0
        if args == ["--import"]:
            import_stream()
            return 0
    except (ValueError, OSError, tarfile.TarError) as error:
        return _fail(str(error))
    return _fail("the lab's nix-store emulates only -qR, --export and --import, not %s" % " ".join(args))
