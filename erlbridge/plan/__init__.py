"""Plan an upgrade of a real release from two builds: appups, relup, tarball (L3).

Example::

    from erlbridge.plan import plan_upgrade

    plan = plan_upgrade("old/_build/prod/rel/shop", "new/_build/prod/rel/shop")
    print(plan.to_text())                      # the diff, each appup, the warnings
    plan.write_tarball("shop-2.0.0.tar.gz")    # Driver.upgrade(path) installs it

The diff, the classification of modules and the appup generation are pure Python
(beams are read in Python, :mod:`erlbridge.plan.beam`); the relup comes from OTP's own
``systools:make_relup``, run by an :class:`ErlRunner` (the local ``erl`` or a container
of the release's OTP). Refusals raise :class:`erlbridge.exceptions.PlanError`.
"""

from erlbridge.exceptions import PlanError
from erlbridge.plan.beam import Beam, read_beam
from erlbridge.plan.build import AppBuild, ReleaseBuild, open_build
from erlbridge.plan.diff import AppDiff, ModuleChange, ModuleKind, ReleaseDiff
from erlbridge.plan.planner import plan_upgrade
from erlbridge.plan.result import UpgradePlan
from erlbridge.plan.runner import ErlRunner
from erlbridge.plan.warnings import PlanWarning

__all__ = [
    "AppBuild",
    "AppDiff",
    "Beam",
    "ErlRunner",
    "ModuleChange",
    "ModuleKind",
    "PlanError",
    "PlanWarning",
    "ReleaseBuild",
    "ReleaseDiff",
    "UpgradePlan",
    "open_build",
    "plan_upgrade",
    "read_beam",
]
