"""``python -m jhub_af.accounting [--config FILE] [--db-url URL] [--upgrade-db]``."""

from .service import main

main()
