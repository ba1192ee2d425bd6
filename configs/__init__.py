"""Settings profiles as data: ``default.yaml`` plus one YAML file per profile. A package
so the profiles ship inside the installed distribution (``pip install .``)."""

from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent
