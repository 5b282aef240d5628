"""The hypothesis profile of the property tests: few examples, the same ones every run.

CI shares two cores, so each example (a signed delivery to the web app and, when queued, a
real worker's run against the fake Close) costs tens of milliseconds there; the count keeps
a test under about 20 s. derandomize makes every run draw the same examples, so a red run is
red again on a rerun; deadline=None, since a slow example on a busy machine is not a bug.
DEALKEEPER_HYPOTHESIS_EXAMPLES asks for more and DEALKEEPER_HYPOTHESIS_RANDOM=1 for other
examples than CI's, to search longer on a workstation.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "dealkeeper",
    derandomize=not os.environ.get("DEALKEEPER_HYPOTHESIS_RANDOM"),
    database=None,  # nothing written into the checkout
    max_examples=int(os.environ.get("DEALKEEPER_HYPOTHESIS_EXAMPLES", "400")),
    deadline=None,
    print_blob=False,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,  # the world is the same for every example
    ],
)
settings.load_profile("dealkeeper")
