"""Emulated `nix-env`, only the profile operations the collection uses on a host.

`-p PROFILE --set PATH`, `--rollback`, `--switch-generation N` (`-G N`) and
`--list-generations`, with Nix's messages; and nixos-container's build,
`-p PROFILE -I nixos-config=FILE -f <nixpkgs/nixos>|PATH --set -A system`: the configuration is
evaluated (charged and logged as a `build`, nixlab.evaluation) and its system, named after
its `networking.hostName` (`unnamed` when empty, as NixOS names it), set in the profile. Nix's rule for --set: a new generation is made
unless the newest generation already points at PATH, in which case the profile just
switches to it.
"""

import datetime
import os
import re
import sys

from nixlab import evaluation, nixos_container, profiles, store

STORE = "/nix/store"


def _fail(message, status=1):
    sys.stderr.write("error: %s\n" % message)
    return status


def _current_number(profile):
    try:
        return int(re.search(r"-(\d+)-link$", os.readlink(profile)).group(1))
    except (OSError, AttributeError):
        return None


def _set(profile, path):
    if not path.startswith(STORE + "/"):
        return _fail("path '%s' is not in the Nix store" % path)
    if not os.path.isdir(path):
        return _fail("path '%s' is not valid" % path)
    profiles.set_profile(profile, path)
    return 0


def _switch_to(profile, number):
    current = _current_number(profile)
    if number not in [n for n, _path in profiles.generations(profile)]:
        return _fail("generation %d does not exist" % number)
    sys.stderr.write("switching profile from version %s to %d\n" % (current, number))
    profiles.switch_to(profile, number)
    return 0


def _rollback(profile):
    current = _current_number(profile)
    older = [n for n, _path in profiles.generations(profile) if current is None or n < current]
    if not older:
        return _fail("no generation older than the current (%s) exists" % current)
    return _switch_to(profile, older[-1])


def _list(profile):
    current = _current_number(profile)
    directory, base = os.path.split(profile)
    for number, _path in profiles.generations(profile):
        stamp = os.lstat(os.path.join(directory, "%s-%d-link" % (base, number))).st_mtime
        when = datetime.datetime.fromtimestamp(stamp).strftime("%Y-%m-%d %H:%M:%S")
        sys.stdout.write("%4d   %s   %s\n" % (number, when, "(current)" if number == current else ""))
    return 0


def _build(profile, search_path, nixos):
    """Evaluate and build `system` of NIXOS with nixos-config from SEARCH_PATH, into PROFILE."""
    config_file = dict(item.split("=", 1) for item in search_path if "=" in item).get("nixos-config")
    if config_file is None:
        return _fail("file 'nixos-config' was not found in the Nix search path (add it using $NIX_PATH or -I)")
    if nixos != "<nixpkgs/nixos>" and not os.path.exists(nixos):
        return _fail("getting status of '%s': No such file or directory" % os.path.abspath(nixos))

    def evaluate():
        if not os.path.isfile(config_file):
            sys.stderr.write("error: getting status of '%s': No such file or directory\n" % config_file)
            return None
        evaluated, error = store.eval_config(file=config_file)
        if evaluated is None:
            sys.stderr.write(error)
            return None
        return nixos_container.evaluate_and_build(evaluated.get("hostName") or "unnamed", config_file)

    built = evaluation.charged("build", os.path.basename(profile), config_file, evaluate)
    if built is None:
        return 1
    return _set(profile, built)


def main(argv):
    profile = None
    operation = None
    search_path = []
    nixos = None
    args = list(argv)
    while args:
        word = args.pop(0)
        if word in ("-p", "--profile") and args:
            profile = args.pop(0)
        elif word == "-I" and args:
            search_path.append(args.pop(0))
        elif word in ("-f", "--file") and args:
            nixos = args.pop(0)
        elif word == "--set" and args[:2] == ["-A", "system"] and nixos is not None:
            args[:2] = []
            operation = ("build", nixos)
        elif word == "--set" and args:
            operation = ("set", args.pop(0))
        elif word == "--rollback":
            operation = ("rollback", None)
        elif word in ("--switch-generation", "-G") and args:
            operation = ("switch", args.pop(0))
        elif word == "--list-generations":
            operation = ("list", None)
        else:
            return _fail("the lab's nix-env does not emulate '%s'" % word)
    if profile is None or operation is None:
        return _fail("the lab's nix-env needs -p PROFILE and one of --set, --rollback, "
                     "--switch-generation, --list-generations")
    kind, value = operation
    if kind == "build":
        return _build(profile, search_path, value)
    if kind == "set":
        return _set(profile, value)
    if kind == "rollback":
        return _rollback(profile)
    if kind == "switch":
        if not value.isdigit():
            return _fail("invalid generation number '%s'" % value)
        return _switch_to(profile, int(value))
    return _list(profile)
