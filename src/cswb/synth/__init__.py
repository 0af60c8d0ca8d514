"""The synthetic city used by the demo, the tests and the benchmarks (see docs/synth.md).

``write_demo_city`` writes the demo data set; ``build_city`` and ``write_export`` make a CAD
export of any size (``cswb synth export``).
"""

from cswb.synth.city import City, build_city
from cswb.synth.demo import DemoCity, write_demo_city
from cswb.synth.export import ExportResult, write_export

__all__ = ["City", "DemoCity", "ExportResult", "build_city", "write_demo_city", "write_export"]
