"""Repository-wide pytest configuration.

The erlbridge plugin (``erlbridge.pytest_plugin``, loaded through its ``pytest11`` entry
point) provides the cluster fixtures, the ``--erl-backend``/``--otp`` options and the CI
rule: with ``CI=true`` a skipped ``integration``/``docker`` test fails the run.
"""

pytest_plugins = ["pytester"]
