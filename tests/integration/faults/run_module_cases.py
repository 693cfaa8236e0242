"""Run a module's main() in-process once per case, inside a lab host (test harness).

Reads JSON lines `{"module": "nixos_container", "args": {...}}` on stdin and prints one JSON
line per case: the module's result dict, or `{"harness_error": "..."}` if the module did not
answer with JSON. The module code is the collection's own, imported from the checkout (run with
the venv's python and PYTHONPATH=<repo>/.build), acting on the host it runs in.
"""

import importlib
import io
import json
import sys
import traceback
from contextlib import redirect_stderr, redirect_stdout

from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes


def run_case(module_name, args):
    module = importlib.import_module('ansible_collections.nixfleet.containers.plugins.modules.' + module_name)
    basic._ANSIBLE_ARGS = to_bytes(json.dumps({'ANSIBLE_MODULE_ARGS': args}))
    basic._ANSIBLE_PROFILE = 'legacy'   # what the controller sends for plain JSON arguments
    out, err = io.StringIO(), io.StringIO()
    try:
        with redirect_stdout(out), redirect_stderr(err):
            module.main()
    except SystemExit:
        pass
    except Exception:  # a traceback is exactly what the fault suite looks for
        return dict(harness_error=traceback.format_exc(), stdout=out.getvalue(), stderr=err.getvalue())
    try:
        return json.loads(out.getvalue())
    except ValueError:
        return dict(harness_error='no JSON from the module', stdout=out.getvalue(), stderr=err.getvalue())


def main():
    for line in sys.stdin:
        case = json.loads(line)
        print(json.dumps(run_case(case['module'], case['args']), default=str), flush=True)


if __name__ == '__main__':
    main()
