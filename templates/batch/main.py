"""Entry point of the batch Flex Template (``FLEX_TEMPLATE_PYTHON_PY_FILE`` in its image)."""

import logging
import sys

from templates.launcher import BATCH, launch

if __name__ == "__main__":
    logging.getLogger().setLevel(logging.INFO)
    launch(BATCH, sys.argv[1:])
