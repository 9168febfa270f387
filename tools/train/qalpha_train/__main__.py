"""``python -m qalpha_train`` = ``qalpha-train`` (see :mod:`qalpha_train.cli`)."""

import sys

from .cli import main

sys.exit(main())
