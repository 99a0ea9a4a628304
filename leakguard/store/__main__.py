"""``python -m leakguard.store revision -m "..."``: write a migration (see ``migrate``)."""

import sys

from leakguard.store.migrate import main

sys.exit(main())
