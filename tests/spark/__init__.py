"""Spark local mode settings shared by the tests that run Spark."""

from __future__ import annotations

import shutil

from collect_kit.engine import SparkConfig

#: the suite's Spark: two cores, two shuffle partitions, a small driver, a JIT that warms
#: up fast (tiny data; not a setting for large books)
SPARK = SparkConfig(
    master="local[2]",
    shuffle_partitions=2,
    driver_memory="1g",
    conf={"spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseParallelGC"},
)


def spark_missing() -> str | None:
    """Why Spark cannot run here (None when it can)."""
    if shutil.which("java") is None:
        return "Spark needs Java 17: no java on PATH"
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "PySpark is not installed (pip install -e '.[spark]')"
    return None
