from paygate_dev.cli import main

raise SystemExit(main())
