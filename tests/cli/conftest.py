"""The shared family checks (tests/cli/family_checks.py) assert in a helper module: pytest rewrites
it as it does test modules, so their failures read as well."""

import pytest

pytest.register_assert_rewrite("tests.cli.family_checks")
