"""Device program: serve the fetched classifier (see collab_devicekit.classify)."""
from collab_devicekit.classify import main

raise SystemExit(main())
