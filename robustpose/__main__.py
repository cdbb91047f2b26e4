"""``python -m robustpose`` (also what ``torchrun -m robustpose`` runs)."""
from robustpose.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
