# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One step type and one executor for every plan: container, set, network and NAT.

This module_util is PRIVATE to the collection: it may change without notice.

A plan is data: an action, the reasons in words, and ordered :class:`Step` s, each the name of
an operation and ALL of its arguments (names, argv values, paths, file texts). :func:`execute`
hands each step's arguments to the operation of that name and needs nothing else, so what
``--check`` reports is exactly what a real run does, and a plan can be read, compared and
shown without the module's parameters.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class Step(object):
    """An operation and its arguments; ``label`` is how results name it (the op by default)."""

    __slots__ = ('op', 'args', 'label')

    def __init__(self, op, label=None, **args):
        self.op = op
        self.args = args
        self.label = label or op

    def __eq__(self, other):
        return isinstance(other, Step) and (self.op, self.label, self.args) == (other.op, other.label, other.args)

    def __ne__(self, other):
        return not self == other

    def __repr__(self):
        return 'Step(%r%s%s)' % (self.op, '' if self.label == self.op else ', label=%r' % self.label,
                                 ''.join(', %s=%r' % item for item in sorted(self.args.items())))


class Plan(object):
    """What a module will do: ACTION (noop when there are no steps), STEPS in order, REASONS.

    BEFORE and AFTER, when given, are the state the steps start from and the one they make,
    as the module's ``--diff`` shows them.
    """

    def __init__(self, action, steps, reasons=(), before=None, after=None):
        self.action = action
        self.steps = list(steps)
        self.reasons = list(reasons)
        self.before = before
        self.after = after

    @property
    def changes(self):
        return bool(self.steps)

    @property
    def names(self):
        """The steps as results show them."""
        return [step.label for step in self.steps]

    def has(self, op):
        return any(step.op == op for step in self.steps)

    def step(self, op):
        """The first step of operation OP, or None."""
        return next((step for step in self.steps if step.op == op), None)

    def as_dict(self):
        return dict(action=self.action, steps=self.names, reasons=list(self.reasons))


def execute(steps, operations, before=None):
    """Run STEPS in order: ``operations.OP(**args)`` for each; ``before(step)`` first, when given.

    An operation that fails raises; the steps after it do not run.
    """
    for step in steps:
        if before is not None:
            before(step)
        getattr(operations, step.op)(**step.args)
