"""``python -m llmpulse ...`` runs the ``llmpulse`` command (where the script is not on PATH)."""

from llmpulse.cli.main import main

if __name__ == "__main__":
    main()
