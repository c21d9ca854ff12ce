"""``python -m beam_ecommerce.cli``: the same as the ``beam-ecommerce`` command."""

import sys

from beam_ecommerce.cli import main

sys.exit(main())
