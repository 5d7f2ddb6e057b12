"""`python -m mentor_trainer` is `mentor-train`."""

import sys

from .cli import main

sys.exit(main())
