# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The real ``nix-instantiate`` fixtures of the module_utils tests, shared here."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.nixfleet.containers.tests.unit.plugins.module_utils.conftest import nix, run  # noqa: F401 pylint:disable=unused-import
