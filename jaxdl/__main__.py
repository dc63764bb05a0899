import sys

from jaxdl.cli import entry

sys.exit(entry())
