"""Entry point of the streaming Flex Template (``FLEX_TEMPLATE_PYTHON_PY_FILE`` in its image)."""

import logging
import sys

from templates.launcher import STREAMING, launch

if __name__ == "__main__":
    logging.getLogger().setLevel(logging.INFO)
    launch(STREAMING, sys.argv[1:])
