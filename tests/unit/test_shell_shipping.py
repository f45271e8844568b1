"""render/shell.py: the shipped bootstrap script loses its comment lines and nothing else."""

from __future__ import annotations

from provisioner.render.shell import without_comments

SCRIPT = """#!/bin/bash
# A comment.
set -euo pipefail
  # An indented one.
echo "# not a comment" # a trailing comment stays (it is on a line with code)
# shellcheck source=/dev/null
. /etc/os-release
cat >/etc/unit <<'UNIT'
# A unit's own comment is data.
[Unit]
UNIT
cat <<-EOF2
	# Data too.
	EOF2
#done
"""


def test_comment_lines_go_code_and_here_documents_stay() -> None:
    assert without_comments(SCRIPT) == """#!/bin/bash
set -euo pipefail
echo "# not a comment" # a trailing comment stays (it is on a line with code)
# shellcheck source=/dev/null
. /etc/os-release
cat >/etc/unit <<'UNIT'
# A unit's own comment is data.
[Unit]
UNIT
cat <<-EOF2
	# Data too.
	EOF2
"""


def test_a_script_without_comments_is_unchanged() -> None:
    text = "#!/bin/bash\necho hi\n"
    assert without_comments(text) == text
