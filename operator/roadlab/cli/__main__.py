"""`python -m roadlab.cli`, as `kubectl lab`."""

import sys

from roadlab.cli.app import main

sys.exit(main())
