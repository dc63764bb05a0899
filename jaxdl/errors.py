"""User-facing errors.

A `UserError` is a mistake in what the user gave us (config, CLI arguments, data, checkpoint). The CLI turns it
into ONE line on stderr and exit code 2: what was wrong, what was expected, what to do.
"""


class UserError(Exception):
  """Bad input from the user. The message is a single line: what was wrong, what was expected, what to do."""

  def __init__(self, what: str, expected: str | None = None, fix: str | None = None):
    parts = [what.rstrip('.')]
    if expected:
      parts.append(f'expected {expected.rstrip(".")}')
    if fix:
      parts.append(fix.rstrip('.'))
    super().__init__('; '.join(parts).replace('\n', ' '))
