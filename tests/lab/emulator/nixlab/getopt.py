"""Perl Getopt::Long as nixos-container configures it (gnu_getopt, no_bundling).

What that configuration means, and what is reproduced here:
  * options may appear anywhere (permutation); `--` ends option parsing;
  * `--name` and `-name` both name a long option; names are case-insensitive and may be
    abbreviated to any unique prefix (an exact name always wins);
  * `--name=value` or `--name value`; a mandatory string argument takes the next word
    whatever it looks like; `--name=` gives the empty string (gnu_compat);
  * `name=s{2}` takes two words;
  * errors are warned on stderr and parsing goes on; the caller exits 1 afterwards.
"""


class OptionSpec:
    """One option: its name, how many string words it takes (0 = a flag)."""

    def __init__(self, name, nargs=0):
        self.name = name
        self.nargs = nargs


class ParseResult:
    def __init__(self):
        self.values = {}        # name -> list of occurrences (each a tuple of words)
        self.arguments = []     # non-option words, in order
        self.errors = []        # messages, each ending in "\n"
        self.help_at = None     # index into errors at the moment --help was seen

    def last(self, name):
        """The value of the last occurrence (Perl's scalar destination), or None."""
        found = self.values.get(name)
        if not found:
            return None
        words = found[-1]
        return words[0] if words else True

    def given(self, name):
        return name in self.values


def _resolve(specs, word):
    """Map a typed option name to its spec, or return an error message."""
    lowered = word.lower()
    for spec in specs:
        if spec.name == lowered:
            return spec, None
    hits = sorted(spec.name for spec in specs if spec.name.startswith(lowered))
    if len(hits) == 1:
        return next(s for s in specs if s.name == hits[0]), None
    if len(hits) > 1:
        return None, "Option %s is ambiguous (%s)\n" % (word, ", ".join(hits))
    return None, "Unknown option: %s\n" % word


def _looks_like_option(word):
    return len(word) > 1 and word.startswith("-")


def parse(argv, specs, on_help=None):
    """Parse argv against specs; call on_help() the moment --help is met (it may exit)."""
    result = ParseResult()
    words = list(argv)
    index = 0
    while index < len(words):
        word = words[index]
        index += 1
        if word == "--":
            result.arguments.extend(words[index:])
            break
        if not _looks_like_option(word):
            result.arguments.append(word)
            continue
        body = word[2:] if word.startswith("--") else word[1:]
        inline = None
        if "=" in body:
            body, inline = body.split("=", 1)
        spec, error = _resolve(specs, body)
        if error:
            result.errors.append(error)
            continue
        if spec.nargs == 0:
            if inline is not None:
                result.errors.append("Option %s does not take an argument\n" % spec.name)
                continue
            result.values.setdefault(spec.name, []).append(())
            if spec.name == "help" and on_help is not None:
                on_help(result)
            continue
        taken = []
        if inline is not None:
            taken.append(inline)
        while len(taken) < spec.nargs and index < len(words):
            taken.append(words[index])
            index += 1
        if len(taken) < spec.nargs:
            result.errors.append("Option %s requires an argument\n" % spec.name)
            continue
        result.values.setdefault(spec.name, []).append(tuple(taken))
    return result
