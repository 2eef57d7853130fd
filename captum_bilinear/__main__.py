"""``python -m captum_bilinear`` (and ``torchrun ... -m captum_bilinear``): the command line."""

import sys

from captum_bilinear.cli import main

if __name__ == "__main__":
    sys.exit(main())
