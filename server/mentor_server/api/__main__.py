"""`python -m mentor_server.api serve|records`: the service commands without the full CLI."""

from .cli_commands import main

raise SystemExit(main())
