"""`journalctl -u container@NAME[.service] [-n N] [--no-pager] [-q] [-o cat]`: the lab has no
journald; a unit's output is in /run/nixos-lab/journal/container@NAME.log (see units.py)."""
import sys

from nixlab import units

IGNORED = ("--no-pager", "-q", "--quiet", "-x", "-e")


def main(argv):
    unit, lines = None, None
    args = list(argv)
    while args:
        word = args.pop(0)
        if word in ("-u", "--unit") and args:
            unit = args.pop(0)
        elif word.startswith("--unit="):
            unit = word.split("=", 1)[1]
        elif word in ("-n", "--lines") and args:
            lines = int(args.pop(0))
        elif word.startswith("--lines="):
            lines = int(word.split("=", 1)[1])
        elif word in ("-o", "--output") and args:
            args.pop(0)             # the file has no journal fields: every output is "cat"
        elif word.startswith("--output=") or word in IGNORED:
            continue
        else:
            sys.stderr.write("the lab's journalctl does not know %r\n" % word)
            return 1
    if not unit or not unit.startswith("container@"):
        sys.stderr.write("the lab's journalctl needs -u container@NAME\n")
        return 1
    name = unit[len("container@"):]
    if name.endswith(".service"):
        name = name[:-len(".service")]
    try:
        with open(units.journal_file(name), encoding="utf-8", errors="replace") as stream:
            text = stream.read().splitlines()
    except FileNotFoundError:
        sys.stdout.write("-- No entries --\n")
        return 0
    for line in text[-lines:] if lines else text:
        sys.stdout.write(line + "\n")
    return 0
